package org.example.visitcounter;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP proxy in front of Redis that can swallow replies: the command reaches Redis and runs, but
 * the client never hears back. That is the ambiguous failure (a read timeout after the command was
 * sent) that makes retrying a plain INCR count twice.
 */
final class ReplyDroppingProxy implements AutoCloseable {
    private final ServerSocket server;
    private final int redisPort;
    private final AtomicInteger repliesToDrop = new AtomicInteger();
    private final AtomicInteger dropped = new AtomicInteger();

    ReplyDroppingProxy(int redisPort) throws IOException {
        this.redisPort = redisPort;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread.ofVirtual().start(this::accept);
    }

    int port() {
        return server.getLocalPort();
    }

    /** Swallows the next {@code n} replies (one read from Redis each: one reply on loopback). */
    void dropNextReplies(int n) {
        repliesToDrop.set(n);
    }

    int dropped() {
        return dropped.get();
    }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket client = server.accept();
                Socket redis = new Socket(InetAddress.getLoopbackAddress(), redisPort);
                Thread.ofVirtual().start(() -> pipe(client, redis, false));
                Thread.ofVirtual().start(() -> pipe(redis, client, true));
            } catch (IOException closed) {
                return;
            }
        }
    }

    private void pipe(Socket from, Socket to, boolean replies) {
        byte[] buffer = new byte[16 * 1024];
        try (from; to) {
            InputStream in = from.getInputStream();
            OutputStream out = to.getOutputStream();
            int n;
            while ((n = in.read(buffer)) != -1) {
                if (replies && repliesToDrop.getAndUpdate(left -> Math.max(0, left - 1)) > 0) {
                    dropped.incrementAndGet();
                    continue;
                }
                out.write(buffer, 0, n);
                out.flush();
            }
        } catch (IOException e) {
            // one side closed: closing both (try-with-resources) ends the other pipe too
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}

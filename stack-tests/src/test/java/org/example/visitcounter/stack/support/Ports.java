package org.example.visitcounter.stack.support;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.IntStream;

/** Free ports on loopback, for stacks that must never clash with one a developer runs. */
public final class Ports {
    private Ports() {}

    /** {@code count} consecutive ports free on 127.0.0.1, below the usual ephemeral range. */
    public static int freeBlock(int count) {
        for (int attempt = 0; attempt < 200; attempt++) {
            int base = ThreadLocalRandom.current().nextInt(15_000, 30_000 - count);
            if (IntStream.range(base, base + count).allMatch(Ports::isFree)) {
                return base;
            }
        }
        throw new IllegalStateException("found no " + count + " consecutive free ports");
    }

    private static boolean isFree(int port) {
        try (var socket = new ServerSocket()) {
            socket.setReuseAddress(false);
            socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}

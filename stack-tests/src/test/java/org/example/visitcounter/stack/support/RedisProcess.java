package org.example.visitcounter.stack.support;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.example.visitcounter.RedisVisits;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.exceptions.JedisException;

/**
 * A redis-server of the test's own, for faults that local-stack.sh does not make (it never
 * restarts its Redis): killed, stopped gracefully, frozen, then started again on the same port
 * with the same data directory, so the replicas (given {@code REDIS_URL}) find it where they left it.
 *
 * <p>Always with an append-only file (the fsync policy chosen per start), so that a restart keeps
 * the data. redis.log and the AOF stay under {@code stack-tests/target/redis-process/}.
 */
public final class RedisProcess implements AutoCloseable {
    private final int port = Ports.freeBlock(1);
    private final Path dir = Project.newDirectory("redis-process", "redis-");
    private Process process;

    private RedisProcess() {
        // If the test JVM dies without close(), this Redis must not outlive it.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (process != null) {
                process.destroyForcibly();
            }
        }, "redis-process-stop"));
    }

    /** A new Redis on a free loopback port, AOF with {@code appendfsync}, answering PING. */
    public static RedisProcess start(String appendfsync) {
        var redis = new RedisProcess();
        redis.startAgain(appendfsync);
        return redis;
    }

    /** {@code redis://127.0.0.1:<port>}, for the stack's REDIS_URL. */
    public String url() {
        return "redis://127.0.0.1:" + port;
    }

    /** Starts redis-server again (after a kill or stop) on the same port and directory; returns once it answers PING. */
    public void startAgain(String appendfsync) {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("Redis is still running (pid " + process.pid() + ")");
        }
        process = Processes.start(List.of("redis-server", "--bind", "127.0.0.1", "--port", Integer.toString(port),
                "--dir", dir.toString(), "--save", "", "--appendonly", "yes", "--appendfsync", appendfsync,
                "--daemonize", "no"), Map.of(), dir.resolve("redis.log"));
        // Redis answers LOADING while it replays the AOF: ready means PING gets PONG.
        await("redis-server on port " + port + " to answer PING", Duration.ofSeconds(30))
                .ignoreExceptionsInstanceOf(JedisException.class)
                .until(() -> process.isAlive() && "PONG".equals(call(Jedis::ping)));
    }

    /** SIGKILL (a frozen process too): no shutdown, no final fsync; waits until the process is gone. */
    public void kill() {
        process.destroyForcibly();
        waitForExit();
    }

    /** SIGTERM: Redis's own graceful SHUTDOWN (flushes and fsyncs the AOF); waits until it exits 0. */
    public void terminate() {
        process.destroy();
        assertEquals(0, waitForExit(), "redis-server exit status after SIGTERM");
    }

    public long total() {
        String value = call(jedis -> jedis.get(RedisVisits.TOTAL_KEY));
        return value == null ? 0 : Long.parseLong(value);
    }

    /** Commands on a connection of their own (Jedis, 2 s timeout), e.g. {@code call(jedis -> jedis.info("errorstats"))}. */
    public <T> T call(Function<Jedis, T> commands) {
        try (var jedis = new Jedis("127.0.0.1", port, 2000)) {
            return commands.apply(jedis);
        }
    }

    /** SIGKILL where it still runs: a stopped process does not act on SIGTERM. */
    @Override
    public void close() {
        if (process.isAlive()) {
            kill();
        }
    }

    /** STOP freezes it (the kernel still accepts and queues commands); CONT runs what was queued. */
    public void signal(String signal) {
        Processes.run(List.of("kill", "-s", signal, Long.toString(process.pid()))).ok("kill -s " + signal);
    }

    /** The exit status, within 30 s. */
    private int waitForExit() {
        try {
            assertTrue(process.waitFor(30, TimeUnit.SECONDS), "redis-server (pid " + process.pid() + ") did not exit");
            return process.exitValue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}

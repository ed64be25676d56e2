package org.example.visitcounter.stack;

import java.net.URI;
import java.util.List;

/**
 * The whole stack (nginx, the web replicas, Redis) as the shared promises need it, whatever runs
 * it: {@link LocalStack} (scripts/local-stack.sh) or {@link ComposeStack} (compose.yaml on a
 * Docker engine).
 */
interface Stack extends AutoCloseable {
    /** A path through nginx, e.g. {@code uri("/api/visits")}. */
    URI uri(String path);

    /** The running replicas, by the name each puts in X-Served-By. */
    List<String> replicas();

    /** SIGKILL to a replica's process. */
    void killReplica(String name);

    /**
     * Brings a killed replica back (the loopback supervisor restarts it by itself; Docker needs a
     * {@code docker start} after a {@code docker kill}) and returns once it reports ready.
     */
    void startReplica(String name);

    /** A graceful stop of Redis: it saves its data on the way down. */
    void stopRedis();

    void startRedis();

    /** Redis stopped and started again on its data: on Compose the whole stack, down and up. */
    default void restartKeepingData() {
        stopRedis();
        startRedis();
    }

    /** Redis's visit total ({@code RedisVisits.TOTAL_KEY}). */
    long redisTotal();

    @Override
    void close();
}

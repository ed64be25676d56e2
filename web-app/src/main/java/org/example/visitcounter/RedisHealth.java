package org.example.visitcounter;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.exceptions.JedisException;

/**
 * Whether Redis answers, learned from every call the service makes and, while it does not, from a
 * background probe that keeps reconnecting with the same backoff as requests use. Logs one WARN
 * when Redis becomes unreachable and one INFO when it is back, never a line per attempt.
 */
final class RedisHealth implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RedisHealth.class);

    private enum State { STARTING, UP, DOWN }

    private final RedisVisits redis;
    private final RedisRetry retry;
    private final String where;
    private final AtomicReference<State> state = new AtomicReference<>(State.STARTING);
    private final AtomicBoolean probing = new AtomicBoolean();
    private final ScheduledExecutorService prober = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("redis-probe").daemon().factory());
    private volatile long downSinceNanos;

    RedisHealth(RedisVisits redis, RedisRetry retry, String where) {
        this.redis = redis;
        this.retry = retry;
        this.where = where;
    }

    /** Starts probing right away, so start-up says at once whether Redis is there. */
    void start() {
        startProbing(0);
    }

    /** A live PING: what readiness means. */
    boolean ready() {
        try {
            redis.ping();
            reachable();
            return true;
        } catch (JedisException e) {
            unreachable(e);
            return false;
        }
    }

    void reachable() {
        if (state.get() == State.UP) {
            return; // the common case, on every request: a read, not a write
        }
        State before = state.getAndSet(State.UP);
        if (before == State.STARTING) {
            log.info("Redis at {} is reachable", where);
        } else if (before == State.DOWN) {
            log.info("Redis at {} is reachable again after {} ms", where,
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - downSinceNanos));
        }
    }

    void unreachable(Throwable cause) {
        if (state.get() == State.DOWN) {
            return;
        }
        State before = state.getAndSet(State.DOWN);
        if (before != State.DOWN) {
            downSinceNanos = System.nanoTime();
            log.warn("Redis at {} is unreachable ({}); retrying in the background with backoff", where, cause.toString());
            startProbing(1);
        }
    }

    private void startProbing(int attempt) {
        if (probing.compareAndSet(false, true)) {
            schedule(attempt);
        }
    }

    private void schedule(int attempt) {
        long delay = attempt == 0 ? 0 : retry.backoffMillis(attempt);
        try {
            prober.schedule(() -> probe(attempt), delay, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException closed) {
            probing.set(false);
        }
    }

    private void probe(int attempt) {
        try {
            redis.ping();
            probing.set(false);
            reachable();
        } catch (JedisException e) {
            if (state.get() == State.STARTING) {
                unreachable(e); // the first failure at start-up: WARN once, then keep probing here
            } else {
                state.set(State.DOWN);
            }
            schedule(attempt + 1);
        } catch (RuntimeException e) {
            log.error("Redis probe failed unexpectedly", e);
            schedule(attempt + 1);
        }
    }

    @Override
    public void close() {
        prober.shutdownNow();
    }
}

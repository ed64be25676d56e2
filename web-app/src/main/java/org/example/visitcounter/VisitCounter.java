package org.example.visitcounter;

import java.time.Duration;
import org.example.visitcounter.RedisRetry.RedisUnavailableException;
import org.example.visitcounter.RedisVisits.Tally;
import org.example.visitcounter.RedisVisits.Visit;
import redis.clients.jedis.exceptions.JedisConnectionException;

/** The service's logic: count or read visits through Redis, retrying as the policy says. */
final class VisitCounter implements AutoCloseable {
    private final String replica;
    private final Duration dedupeWindow;
    private final RedisVisits redis;
    private final RedisRetry retry;
    private final RedisHealth health;
    private final Metrics metrics;

    VisitCounter(Settings settings, Metrics metrics) {
        this.replica = settings.replicaName();
        this.dedupeWindow = settings.dedupeWindow();
        this.metrics = metrics;
        this.redis = new RedisVisits(settings.redis());
        this.retry = new RedisRetry(settings.retry(), settings.redis().timeout(), this::retried);
        this.health = new RedisHealth(redis, retry, settings.redis().toString());
    }

    /** Begins watching Redis in the background; the service serves whether or not it is there. */
    void start() {
        health.start();
    }

    String replica() {
        return replica;
    }

    long retryAfterSeconds() {
        return retry.retryAfterSeconds();
    }

    Visit count(String requestId) {
        Visit visit = call(() -> redis.count(requestId, replica, dedupeWindow));
        metrics.visit(visit.repeat());
        return visit;
    }

    Tally read() {
        return call(redis::read);
    }

    boolean ready() {
        return health.ready();
    }

    private <T> T call(java.util.function.Supplier<T> attempt) {
        try {
            T result = retry.call(attempt);
            health.reachable();
            return result;
        } catch (RedisUnavailableException e) {
            if (e.reason == RedisUnavailableException.Reason.FAILURE) { // deadline misses were counted per retry
                failed(e.getCause());
            }
            throw e;
        }
    }

    private void retried(Throwable cause) {
        metrics.redisRetry();
        failed(cause);
    }

    private void failed(Throwable cause) {
        metrics.redisError(cause);
        if (cause instanceof JedisConnectionException) {
            health.unreachable(cause);
        }
    }

    @Override
    public void close() {
        health.close();
        redis.close();
    }
}

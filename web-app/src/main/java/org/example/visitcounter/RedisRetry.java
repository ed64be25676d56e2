package org.example.visitcounter;

import io.github.resilience4j.core.IntervalBiFunction;
import io.github.resilience4j.core.functions.Either;
import io.github.resilience4j.retry.Retry;
import io.github.resilience4j.retry.RetryConfig;
import java.time.Duration;
import java.util.NoSuchElementException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;
import org.example.visitcounter.RedisRetry.RedisUnavailableException.Reason;
import org.example.visitcounter.Settings.RetrySettings;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.exceptions.JedisException;

/**
 * The retry policy for Redis calls: exponential backoff with <em>full jitter</em>, bounded by a
 * per-request deadline.
 *
 * <p>Full jitter (the wait before retry n is uniform in [0, min(cap, initial·multiplier^(n-1))])
 * spreads the retries of many clients evenly, so replicas that lost Redis together do not hammer
 * it in lock-step when it comes back; AWS's study of backoff found it does the least total work of
 * the common schemes. resilience4j's own randomized backoff jitters around the exponential value
 * and caps afterwards, which piles retries up at the cap, so the schedule is written here and
 * resilience4j runs the loop.
 *
 * <p>Retrying is safe because every counting call is idempotent by request id (see
 * {@code count-visit.lua}): a retry after an ambiguous failure returns the first number.
 * An attempt is only started when it can finish (one Redis timeout) before the deadline, so a
 * request never outlives its deadline.
 */
final class RedisRetry {

    /** The request ran out of time, or Redis gave an error that retrying cannot fix. */
    static final class RedisUnavailableException extends RuntimeException {
        /** No time left for another attempt (each failed one was reported as it was retried), or the cause. */
        enum Reason { DEADLINE, FAILURE }

        final Reason reason;

        RedisUnavailableException(Reason reason, String message, Throwable cause) {
            super(message, cause, false, false);
            this.reason = reason;
        }
    }

    /** A failure worth another attempt, carrying the deadline so the wait before it can be clipped. */
    private static final class TransientFailure extends RuntimeException {
        final long deadlineNanos;

        TransientFailure(JedisException cause, long deadlineNanos) {
            super(cause.getMessage(), cause, false, false);
            this.deadlineNanos = deadlineNanos;
        }
    }

    private final RetrySettings settings;
    private final long attemptNanos;
    private final Retry retry;

    /**
     * @param attemptTime the longest one attempt can take (the Redis timeout)
     * @param onRetry called before each retry with the failure that caused it
     */
    RedisRetry(RetrySettings settings, Duration attemptTime, java.util.function.Consumer<Throwable> onRetry) {
        this.settings = settings;
        this.attemptNanos = attemptTime.toNanos();
        IntervalBiFunction<Object> interval = this::waitMillis;
        this.retry = Retry.of("redis", RetryConfig.custom()
                .maxAttempts(Integer.MAX_VALUE) // the deadline bounds the attempts, not a count
                .intervalBiFunction(interval)
                .retryOnException(e -> e instanceof TransientFailure)
                .failAfterMaxAttempts(false)
                .build());
        retry.getEventPublisher().onRetry(event -> onRetry.accept(event.getLastThrowable().getCause()));
    }

    /** Runs {@code attempt} until it succeeds, fails for good, or the request's deadline comes. */
    <T> T call(Supplier<T> attempt) {
        long deadline = System.nanoTime() + settings.deadline().toNanos();
        try {
            return retry.executeSupplier(() -> {
                if (deadline - System.nanoTime() < attemptNanos) {
                    throw new RedisUnavailableException(Reason.DEADLINE,
                            "Redis did not answer within the request deadline of " + settings.deadline().toMillis() + " ms", null);
                }
                try {
                    return attempt.get();
                } catch (JedisException e) {
                    if (isTransient(e)) {
                        throw new TransientFailure(e, deadline);
                    }
                    throw new RedisUnavailableException(Reason.FAILURE, "Redis refused the request: " + e.getMessage(), e);
                }
            });
        } catch (TransientFailure e) { // only if resilience4j stops retrying on its own, which it should not
            throw new RedisUnavailableException(Reason.FAILURE, "Redis is unavailable: " + e.getMessage(), e.getCause());
        }
    }

    /** The full-jitter wait before retry {@code attempt} (1 = the first retry), in milliseconds. */
    long backoffMillis(int attempt) {
        double ceiling = settings.initialDelay().toMillis() * Math.pow(settings.multiplier(), attempt - 1);
        long capped = (long) Math.min(settings.maxDelay().toMillis(), ceiling);
        return ThreadLocalRandom.current().nextLong(capped + 1);
    }

    /** How long Retry-After should tell clients to wait: the longest backoff, at least a second. */
    long retryAfterSeconds() {
        return Math.max(1, (settings.maxDelay().toMillis() + 999) / 1000);
    }

    private long waitMillis(int attempt, Either<Throwable, Object> outcome) {
        long wait = backoffMillis(attempt);
        if (outcome.isLeft() && outcome.getLeft() instanceof TransientFailure failure) {
            // Wake no later than the last moment an attempt can still finish before the deadline.
            long spareMillis = (failure.deadlineNanos - System.nanoTime() - attemptNanos) / 1_000_000;
            wait = Math.max(0, Math.min(wait, spareMillis));
        }
        return wait;
    }

    /**
     * Failures that may pass: the connection (refused, reset, timed out), Redis still loading its
     * data or busy, no pooled connection free in time, or our script refusing to run past its
     * attempt's deadline. Anything else (wrong password, a bug in the script) will not get better.
     */
    static boolean isTransient(JedisException e) {
        if (e instanceof JedisConnectionException || e.getCause() instanceof NoSuchElementException) {
            return true;
        }
        if (e instanceof JedisDataException) {
            String message = String.valueOf(e.getMessage());
            for (String code : new String[] {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", RedisVisits.TOO_LATE}) {
                if (message.startsWith(code)) {
                    return true;
                }
            }
        }
        return false;
    }
}

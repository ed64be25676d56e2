package org.example.visitcounter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.NoSuchElementException;
import java.util.concurrent.atomic.AtomicInteger;
import org.example.visitcounter.RedisRetry.RedisUnavailableException;
import org.example.visitcounter.Settings.RetrySettings;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.exceptions.JedisException;

class RedisRetryTest {
    private static final RetrySettings SCHEDULE =
            new RetrySettings(Duration.ofMillis(50), 2.0, Duration.ofMillis(1000), Duration.ofMillis(600));

    private final AtomicInteger retries = new AtomicInteger();
    private final RedisRetry retry = new RedisRetry(SCHEDULE, Duration.ofMillis(100), e -> retries.incrementAndGet());

    @Test
    void backoffIsFullJitterUnderAnExponentialCeilingThatStopsAtTheCap() {
        long[] ceilings = {50, 100, 200, 400, 800, 1000, 1000, 1000, 1000};
        for (int attempt = 1; attempt <= ceilings.length; attempt++) {
            long ceiling = ceilings[attempt - 1];
            long min = Long.MAX_VALUE;
            long max = 0;
            long sum = 0;
            int samples = 4000;
            for (int i = 0; i < samples; i++) {
                long wait = retry.backoffMillis(attempt);
                assertTrue(wait >= 0 && wait <= ceiling, "attempt " + attempt + ": " + wait + " outside [0, " + ceiling + "]");
                min = Math.min(min, wait);
                max = Math.max(max, wait);
                sum += wait;
            }
            // Uniform over [0, ceiling]: it reaches both ends and averages about half the ceiling.
            assertTrue(min <= ceiling * 0.05, "attempt " + attempt + " never waited briefly: min " + min);
            assertTrue(max >= ceiling * 0.95, "attempt " + attempt + " never neared its ceiling: max " + max);
            double mean = (double) sum / samples;
            assertTrue(Math.abs(mean - ceiling / 2.0) < ceiling * 0.05, "attempt " + attempt + ": mean " + mean);
        }
    }

    @Test
    void retriesTransientFailuresUntilOneSucceeds() {
        var attempts = new AtomicInteger();
        long result = retry.call(() -> {
            if (attempts.incrementAndGet() < 3) {
                throw new JedisConnectionException("connection refused");
            }
            return 42L;
        });
        assertEquals(42L, result);
        assertEquals(3, attempts.get());
        assertEquals(2, retries.get());
    }

    @Test
    void givesUpBeforeTheDeadlineRatherThanStartAnAttemptThatCouldNotFinish() {
        var attempts = new AtomicInteger();
        long start = System.nanoTime();
        var e = assertThrows(RedisUnavailableException.class, () -> retry.call(() -> {
            attempts.incrementAndGet();
            throw new JedisConnectionException("connection refused");
        }));
        long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
        assertTrue(e.getMessage().contains("within the request deadline of 600 ms"), e.getMessage());
        assertEquals(RedisUnavailableException.Reason.DEADLINE, e.reason);
        assertTrue(attempts.get() >= 2, "retried at least once, made " + attempts.get() + " attempts");
        // The last attempt may start no later than deadline - attempt time (600 - 100 ms).
        assertTrue(elapsedMillis <= 600, "took " + elapsedMillis + " ms, more than the 600 ms deadline");
    }

    @Test
    void doesNotRetryWhatRetryingCannotFix() {
        var attempts = new AtomicInteger();
        var e = assertThrows(RedisUnavailableException.class, () -> retry.call(() -> {
            attempts.incrementAndGet();
            throw new JedisDataException("WRONGPASS invalid username-password pair");
        }));
        assertEquals(1, attempts.get());
        assertTrue(e.getCause() instanceof JedisDataException);
        assertEquals(RedisUnavailableException.Reason.FAILURE, e.reason);
    }

    @Test
    void classifiesFailures() {
        assertTrue(RedisRetry.isTransient(new JedisConnectionException("java.net.SocketTimeoutException: Read timed out")));
        assertTrue(RedisRetry.isTransient(new JedisDataException("LOADING Redis is loading the dataset in memory")));
        assertTrue(RedisRetry.isTransient(new JedisDataException("BUSY Redis is busy running a script")));
        assertTrue(RedisRetry.isTransient(new JedisDataException(RedisVisits.TOO_LATE + " the caller gave up")));
        assertTrue(RedisRetry.isTransient(new JedisException("Could not get a resource from the pool",
                new NoSuchElementException("Timeout waiting for idle object"))));
        assertTrue(!RedisRetry.isTransient(new JedisDataException("NOAUTH Authentication required.")));
        assertTrue(!RedisRetry.isTransient(new JedisDataException("ERR Error running script")));
    }

    @Test
    void retryAfterCoversTheLongestBackoff() {
        assertEquals(1, retry.retryAfterSeconds());
        var slow = new RedisRetry(new RetrySettings(Duration.ofMillis(50), 2.0, Duration.ofMillis(2500), Duration.ofSeconds(5)),
                Duration.ofMillis(100), e -> {});
        assertEquals(3, slow.retryAfterSeconds());
    }
}

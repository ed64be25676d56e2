package org.example.visitcounter;

import static org.example.visitcounter.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.example.visitcounter.RedisVisits.Visit;
import org.example.visitcounter.Settings.RedisSettings;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The dedupe markers in Redis: found for a whole window, gone after two, kept compact. */
class RedisVisitsTest {
    private static final Duration WINDOW = Duration.ofSeconds(1);

    @RegisterExtension
    static final RealRedis redis = new RealRedis();

    private final RedisVisits visits = new RedisVisits(
            new RedisSettings("127.0.0.1", redis.port(), false, 0, Optional.empty(), Optional.empty(), Duration.ofSeconds(2), 2));

    @AfterEach
    void close() {
        visits.close();
    }

    @Test
    void aRepeatGetsTheFirstNumberEvenFromTheNextWindow() {
        Visit first = visits.count("across", "web-1", WINDOW);
        long window = System.currentTimeMillis() / WINDOW.toMillis();
        await("the next window", WINDOW.multipliedBy(2)).until(() -> System.currentTimeMillis() / WINDOW.toMillis() > window);

        Visit again = visits.count("across", "web-2", WINDOW);

        assertTrue(again.repeat(), "counted once only");
        assertEquals(first.number(), again.number(), "the repeat got the first number");
        assertEquals(1, redis.total());
        assertEquals(Map.of("web-1", 1L), again.byReplica(), "no tally for the repeat");
    }

    @Test
    void aMarkerLastsAtLeastOneWindowAndGoesWithinTwo() {
        long start = System.nanoTime();
        long number = visits.count("short-lived", "web-1", WINDOW).number();
        // Asked again until it counts anew: every answer before that is the first number.
        await("the marker to go", WINDOW.multipliedBy(2).plus(RedisVisits.CLOCK_MARGIN).plusSeconds(2))
                .until(() -> {
                    Visit visit = visits.count("short-lived", "web-1", WINDOW);
                    assertTrue(!visit.repeat() || visit.number() == number, "a repeat gets the first number");
                    return !visit.repeat();
                });
        Duration remembered = Duration.ofNanos(System.nanoTime() - start);

        assertFalse(remembered.compareTo(WINDOW) < 0, "remembered for at least the window: " + remembered);
        assertEquals(2, redis.total(), "counted again once forgotten, once");
    }

    @Test
    void markersShareSmallHashesInRedisCompactEncodingThatExpire() {
        Duration window = Duration.ofSeconds(15);
        long before = usedMemory();
        int requests = 20_000;
        for (int i = 0; i < requests; i++) {
            visits.count(UUID.randomUUID().toString().replace("-", ""), "web-1", window);
        }
        long perMarker = (usedMemory() - before) / requests;
        System.out.printf("%d markers: %d B each in used_memory%n", requests, perMarker);

        long maxLife = window.multipliedBy(2).plus(RedisVisits.CLOCK_MARGIN).toMillis();
        long markers = redis.call(jedis -> { // one connection for every hash (the test's own Redis: KEYS is fine)
            Set<String> hashes = jedis.keys(RedisVisits.MARKERS_PREFIX + "*");
            assertTrue(hashes.size() <= 2 * RedisVisits.MARKER_SHARDS, hashes.size() + " hashes of markers");
            long fields = 0;
            for (String hash : hashes) {
                String encoding = jedis.objectEncoding(hash);
                assertTrue(Set.of("listpack", "ziplist").contains(encoding), hash + " is stored as a " + encoding);
                long ttl = jedis.pttl(hash);
                assertTrue(ttl > 0 && ttl <= maxLife, hash + " expires in " + ttl + " ms");
                fields += jedis.hlen(hash);
            }
            return fields;
        });
        assertEquals(requests, markers, "one marker a request");
    }

    private long usedMemory() {
        return redis.call(jedis -> jedis.info("memory").lines()
                .filter(line -> line.startsWith("used_memory:"))
                .mapToLong(line -> Long.parseLong(line.substring("used_memory:".length()).strip()))
                .findFirst().orElseThrow());
    }
}

package org.example.visitcounter;

import static org.example.visitcounter.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.LoggerFactory;

/**
 * Redis slow, down, coming back, or losing a reply, through a real Redis. Test settings: 300 ms
 * Redis timeout, 1500 ms request deadline, backoff from 20 ms capped at 200 ms.
 */
class RedisFaultTest {
    private static final long DEADLINE_MS = 1500;
    private static final long CAP_MS = 200;

    @RegisterExtension
    static final RealRedis redis = new RealRedis();

    private final ListAppender<ILoggingEvent> healthLog = new ListAppender<>();

    @BeforeEach
    void captureHealthLog() {
        healthLog.start();
        ((Logger) LoggerFactory.getLogger(RedisHealth.class)).addAppender(healthLog);
    }

    @AfterEach
    void releaseHealthLog() {
        ((Logger) LoggerFactory.getLogger(RedisHealth.class)).detachAppender(healthLog);
    }

    @Test
    void redisAbsentAtStartThenStartedLater() throws Exception {
        redis.stop();
        TestApp.against(redis.url()).test(http -> {
            assertEquals(200, http.get("/healthz").statusCode(), "the service serves without Redis");
            assertEquals(503, http.get("/readyz").statusCode());

            long start = System.nanoTime();
            HttpResponse<String> page = http.get("/");
            long tookMillis = (System.nanoTime() - start) / 1_000_000;
            assertEquals(503, page.statusCode());
            assertEquals("1", page.headers().firstValue("Retry-After").orElseThrow());
            assertTrue(page.body().contains("cannot reach its database"), page.body());
            assertTrue(tookMillis <= DEADLINE_MS + 250, "answered in " + tookMillis + " ms, past the deadline");
            assertEquals(503, http.post("/api/visits").statusCode());

            redis.start();
            Instant back = Instant.now();
            // The background probe reconnects within one backoff cap of Redis returning.
            await("the health probe to log Redis reachable", Duration.ofMillis(CAP_MS + 1000))
                    .pollInterval(Duration.ofMillis(10)).until(() -> healthLogged(Level.INFO, "reachable"));
            assertTrue(Duration.between(back, Instant.now()).toMillis() <= CAP_MS + 1000);
            assertEquals(200, http.get("/readyz").statusCode());
            assertEquals("1", http.get("/").headers().firstValue("X-Visit-Count").orElseThrow());
        });
        assertEquals(1, count(Level.WARN), "one WARN for the outage, not one per attempt: " + healthLog.list);
    }

    @Test
    void redisRestartedMidRunCountingContinues() throws Exception {
        TestApp.against(redis.url()).test(http -> {
            for (int i = 1; i <= 3; i++) {
                assertEquals(200, http.get("/").statusCode());
            }
            redis.stop();
            for (int i = 0; i < 3; i++) {
                assertEquals(503, http.get("/").statusCode());
            }
            redis.start();
            // Pooled connections died with the old Redis: the retry reconnects, no restart needed.
            HttpResponse<String> after = http.get("/");
            assertEquals(200, after.statusCode());
            assertEquals("4", after.headers().firstValue("X-Visit-Count").orElseThrow());
            assertEquals(4, redis.total());
        });
        assertEquals(1, count(Level.WARN), healthLog.list.toString());
        assertTrue(healthLogged(Level.INFO, "reachable again"), healthLog.list.toString());
    }

    @Test
    void aLostReplyIsRetriedAndCountedExactlyOnce() throws Exception {
        try (var proxy = new ReplyDroppingProxy(redis.port())) {
            TestApp.against("redis://127.0.0.1:" + proxy.port()).test(http -> {
                assertEquals(200, http.get("/").statusCode()); // a pooled connection, set up

                proxy.dropNextReplies(1); // the script runs in Redis; its reply never arrives
                HttpResponse<String> response = http.post("/api/visits", "X-Request-Id", "lost-reply-1");

                assertEquals(1, proxy.dropped());
                assertEquals(200, response.statusCode(), response.body());
                assertTrue(response.body().contains("\"count\":2"), response.body());
                assertTrue(response.body().contains("\"repeat\":true"), "the retry found the first count: " + response.body());
                assertEquals(2, redis.total());
                String metrics = http.get("/metrics").body();
                assertTrue(metrics.contains("redis_retries_total{replica=\"test-replica\"} 1.0"), metrics);
            });
        }
    }

    @Test
    void aFrozenRedisAnswers503AndCommandsItRunsLateCountNothing() throws Exception {
        TestApp.against(redis.url()).test(http -> {
            assertEquals(200, http.get("/").statusCode());
            redis.freeze();
            try {
                long start = System.nanoTime();
                HttpResponse<String> response = http.get("/");
                long tookMillis = (System.nanoTime() - start) / 1_000_000;
                assertEquals(503, response.statusCode());
                assertTrue(tookMillis <= DEADLINE_MS + 250, "answered in " + tookMillis + " ms");
            } finally {
                redis.thaw();
            }
            // Every attempt above reached Redis and waited there; now they run, and must refuse.
            assertEquals(1, redis.total());
            String errorstats = redis.call(jedis -> jedis.info("errorstats"));
            assertTrue(errorstats.contains("errorstat_TOOLATE:count="), "the script refused at least one late command: "
                    + errorstats);
            HttpResponse<String> next = http.get("/");
            assertEquals("2", next.headers().firstValue("X-Visit-Count").orElseThrow());
        });
    }

    private long count(Level level) {
        return healthLog.list.stream().filter(e -> e.getLevel() == level).count();
    }

    private boolean healthLogged(Level level, String text) {
        return healthLog.list.stream().anyMatch(e -> e.getLevel() == level && e.getFormattedMessage().contains(text));
    }
}

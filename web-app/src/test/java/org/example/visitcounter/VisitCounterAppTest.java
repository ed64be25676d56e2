package org.example.visitcounter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The service against a real Redis, through the same factory Main uses. */
class VisitCounterAppTest {
    @RegisterExtension
    static final RealRedis redis = new RealRedis();

    @Test
    void theHomePageCountsEachVisitAndSaysWhoServedIt() {
        TestApp.against(redis.url()).test(http -> {
            for (long expected = 1; expected <= 3; expected++) {
                HttpResponse<String> page = http.get("/");
                assertEquals(200, page.statusCode());
                assertTrue(page.headers().firstValue("Content-Type").orElseThrow().matches("text/html; ?charset=utf-8"));
                assertEquals("test-replica", page.headers().firstValue("X-Served-By").orElseThrow());
                assertEquals(Long.toString(expected), page.headers().firstValue("X-Visit-Count").orElseThrow());
                assertEquals("no-store", page.headers().firstValue("Cache-Control").orElseThrow());
                assertTrue(page.body().contains("<p class=\"count\" id=\"count\">" + expected + "</p>"), page.body());
                assertTrue(page.body().contains("<p class=\"replica\" id=\"served-by\">test-replica</p>"), page.body());
                assertTrue(page.body().contains("<progress max=\"" + expected + "\" value=\"" + expected + "\">"), page.body());
            }
            assertEquals(3, redis.total());
        });
    }

    @Test
    void theApiCountsOnPostAndOnlyReadsOnGet() {
        TestApp.against(redis.url()).test(http -> {
            HttpResponse<String> posted = http.post("/api/visits", "X-Request-Id", "first");
            assertEquals(200, posted.statusCode());
            assertEquals("{\"count\":1,\"servedBy\":\"test-replica\",\"requestId\":\"first\",\"repeat\":false,"
                    + "\"replicas\":{\"test-replica\":1}}", posted.body());
            assertEquals("1", posted.headers().firstValue("X-Visit-Count").orElseThrow());

            for (int i = 0; i < 2; i++) {
                HttpResponse<String> read = http.get("/api/visits");
                assertEquals(200, read.statusCode());
                assertTrue(read.body().contains("\"total\":1"), read.body());
                assertTrue(read.body().contains("\"replicas\":{\"test-replica\":1}"), read.body());
                assertFalse(read.headers().firstValue("X-Visit-Count").isPresent());
            }
            assertEquals(1, redis.total());
        });
    }

    @Test
    void theSameRequestIdIsCountedOnceAndGetsTheFirstNumberBack() {
        TestApp.against(redis.url()).test(http -> {
            http.get("/");
            HttpResponse<String> first = http.get("/", "X-Request-Id", "nginx-abc123");
            HttpResponse<String> again = http.get("/", "X-Request-Id", "nginx-abc123");
            HttpResponse<String> apiAgain = http.post("/api/visits", "X-Request-Id", "nginx-abc123");
            assertEquals("2", first.headers().firstValue("X-Visit-Count").orElseThrow());
            assertEquals("2", again.headers().firstValue("X-Visit-Count").orElseThrow());
            assertTrue(apiAgain.body().contains("\"count\":2") && apiAgain.body().contains("\"repeat\":true"), apiAgain.body());
            assertEquals(2, redis.total());
            String metrics = http.get("/metrics").body();
            assertTrue(metrics.contains("visits_counted_total{replica=\"test-replica\"} 2.0"), metrics);
            assertTrue(metrics.contains("visits_deduplicated_total{replica=\"test-replica\"} 2.0"), metrics);
        });
    }

    @Test
    void aMalformedRequestIdIsRejectedAndNotCounted() {
        TestApp.against(redis.url()).test(http -> {
            for (String bad : List.of("has space", "x".repeat(129), "semi;colon", "ünïcode")) {
                HttpResponse<String> response = http.get("/", "X-Request-Id", bad);
                assertEquals(400, response.statusCode(), bad);
                assertTrue(response.body().startsWith("X-Request-Id must be"), response.body());
            }
            assertEquals(0, redis.total());
        });
    }

    @Test
    void aBodyOverTheLimitIsRefusedAndNotCounted() {
        TestApp.against(redis.url()).test(http -> {
            HttpResponse<String> tooBig = http.postBody("/api/visits", "x".repeat((int) VisitCounterApp.MAX_BODY_BYTES + 1));
            assertEquals(413, tooBig.statusCode(), tooBig.body());
            assertEquals(0, redis.total());

            assertEquals(200, http.postBody("/api/visits", "{}").statusCode(), "a small body is read and ignored");
            assertEquals(1, redis.total());
        });
    }

    @Test
    void unknownPathsAndMethodsCountNothing() {
        TestApp.against(redis.url()).test(http -> {
            assertEquals(404, http.get("/nope").statusCode());
            assertEquals(404, http.get("/api/visits/1").statusCode());
            HttpResponse<String> delete = http.send("DELETE", "/");
            assertEquals(405, delete.statusCode());
            assertEquals("test-replica", delete.headers().firstValue("X-Served-By").orElseThrow());
            assertEquals(405, http.send("PUT", "/api/visits").statusCode());
            assertEquals(0, redis.total());
        });
    }

    @Test
    void healthReadinessAndMetrics() {
        TestApp.against(redis.url()).test(http -> {
            assertEquals(200, http.get("/healthz").statusCode());
            assertEquals(200, http.get("/readyz").statusCode());
            http.get("/");
            HttpResponse<String> metrics = http.get("/metrics");
            assertEquals(200, metrics.statusCode());
            assertTrue(metrics.body().contains("http_server_requests_seconds_count{method=\"GET\",replica=\"test-replica\",route=\"/\",status=\"200\"} 1"),
                    metrics.body());
            assertTrue(metrics.body().contains("visits_counted_total"), metrics.body());
        });
    }

    @Test
    void staticAssetsComeFromTheJar() {
        TestApp.against(redis.url()).test(http -> {
            HttpResponse<String> css = http.get("/static/style.css");
            assertEquals(200, css.statusCode());
            assertTrue(css.headers().firstValue("Content-Type").orElseThrow().startsWith("text/css"));
            assertTrue(css.body().contains(".count"), css.body());
        });
    }

    /** The stylesheet and the icon: a browser loading the page gets no 404 (no console error). */
    @Test
    void everyAssetThePageLinksIsServedWithItsType() {
        TestApp.against(redis.url()).test(http -> {
            var links = Pattern.compile("href=\"(/static/[^\"]+)\"(?: type=\"([^\"]+)\")?")
                    .matcher(http.get("/").body());
            var seen = new ArrayList<String>();
            while (links.find()) {
                HttpResponse<String> asset = http.get(links.group(1));
                assertEquals(200, asset.statusCode(), links.group(1));
                String type = asset.headers().firstValue("Content-Type").orElseThrow();
                assertTrue(links.group(2) == null || type.startsWith(links.group(2)), links.group(1) + ": " + type);
                seen.add(links.group(1));
            }
            assertEquals(List.of("/static/style.css", "/static/favicon.svg"), seen);
        });
    }

    @Test
    void staticAssetsComeFromStaticDirAndAnEditShowsOnTheNextRequest(@TempDir Path dir) throws Exception {
        Path css = Files.writeString(dir.resolve("style.css"), "body { color: red; }");
        TestApp.against(redis.url(), "STATIC_DIR", dir.toString()).test(http -> {
            assertEquals("body { color: red; }", http.get("/static/style.css").body());
            Files.writeString(css, "body { color: green; }");
            assertEquals("body { color: green; }", http.get("/static/style.css").body());
        });
    }

    @Test
    void parallelVisitsEachGetTheirOwnNumberAndTheTotalMatches() throws Exception {
        int requests = 400;
        TestApp.against(redis.url()).test(http -> {
            ExecutorService pool = Executors.newFixedThreadPool(16);
            try {
                List<Callable<HttpResponse<String>>> calls = new ArrayList<>();
                for (int i = 0; i < requests; i++) {
                    calls.add(i % 2 == 0 ? () -> http.get("/") : () -> http.post("/api/visits"));
                }
                var numbers = new HashSet<String>();
                int ok = 0;
                for (Future<HttpResponse<String>> f : pool.invokeAll(calls)) {
                    HttpResponse<String> response = f.get();
                    if (response.statusCode() / 100 == 2) {
                        ok++;
                        assertTrue(numbers.add(response.headers().firstValue("X-Visit-Count").orElseThrow()),
                                "two responses carried the same number");
                    }
                }
                assertEquals(requests, ok);
                assertEquals(ok, redis.total());
            } finally {
                pool.shutdownNow();
            }
        });
    }
}

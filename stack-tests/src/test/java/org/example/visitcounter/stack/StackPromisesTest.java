package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.PageViews.header;
import static org.example.visitcounter.stack.support.Waits.await;
import static org.example.visitcounter.stack.support.Waits.explained;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.example.visitcounter.stack.support.Browser;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.LoadClient;
import org.example.visitcounter.stack.support.LoadClient.Run;
import org.example.visitcounter.stack.support.LoadClient.Scenario;
import org.example.visitcounter.stack.support.PageViews;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer.OrderAnnotation;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The promises every way of running the stack keeps, asserted once and run against each backend
 * ({@link LoopbackStackTest}, {@link ComposeStackTest}). One stack per class; the scenarios run in
 * order and each leaves every replica serving. Under load ({@link Scenario}), Redis's total grows
 * by exactly the 2xx the clients saw, except for the one bound docs/reliability.md documents
 * for a Redis that goes away with requests in flight.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(OrderAnnotation.class)
abstract class StackPromisesTest {
    /** A few connections: the machine has 2 cores, shared with 3 JVMs, nginx and Redis. */
    private static final int CONNECTIONS = 3;
    /**
     * nginx skips a failed peer for fail_timeout=5s, and under Compose re-resolves `web` every
     * second (upstream.conf.template: valid=1s): a change of replicas shows within about 6 s.
     * Five times that, for a loaded machine.
     */
    static final Duration RESOLVE_DEADLINE = Duration.ofSeconds(30);
    /**
     * From Redis started until every replica counts again: the replicas' reconnect backoff
     * (REDIS_RETRY_MAX_DELAY_MS=1000), the request deadline (2 s), and under Compose Docker's DNS
     * listing `redis` again (web-app Main caches no failed lookup). With room for a loaded machine.
     */
    private static final Duration RECOVERY_DEADLINE = Duration.ofSeconds(20);

    @AutoClose
    Stack stack;

    /** Starts the backend's stack; skips the class where the backend is not available. */
    abstract Stack startStack();

    @BeforeAll
    void up() {
        stack = startStack();
        awaitOrExplain("nginx to serve GET /api/visits with 200", RESOLVE_DEADLINE,
                () -> Http.status(stack.uri("/api/visits")) == 200);
    }

    @Test
    @Order(1)
    void operationalEndpointsAreHiddenBehindNginx() throws Exception {
        // Spellings that Jetty/Javalin route to the same endpoints, or that nginx normalizes to them.
        for (String path : List.of("/metrics", "/healthz", "/readyz", "/metrics/", "/readyz/", "/Metrics",
                "/%6Detrics", "//metrics", "/metrics;x=1", "/healthz?verbose=1")) {
            var response = Http.get(stack.uri(path));
            assertEquals(404, response.statusCode(), "through nginx: " + path);
            assertTrue(response.headers().firstValue("X-Served-By").isEmpty(), "reached a replica: " + path);
        }
        var health = Http.get(stack.uri("/nginx-health"));
        assertEquals(200, health.statusCode());
        assertEquals("ok", health.body().trim());
    }

    @Test
    @Order(2)
    void sequentialVisitsRotateStrictlyOverTheReplicasAndCountUpByOne() throws Exception {
        for (var response : PageViews.assertStrictRotation(stack.uri("/"), stack.replicas().size())) {
            assertTrue(response.body().contains("id=\"served-by\">" + header(response, "X-Served-By") + "<"),
                    "the page names the replica in X-Served-By:\n" + response.body());
            assertTrue(response.body().contains("id=\"count\">" + header(response, "X-Visit-Count") + "<"),
                    "the page shows X-Visit-Count:\n" + response.body());
            var headers = response.headers();
            assertTrue(headers.firstValue("Content-Security-Policy").orElse("").contains("default-src 'self'"));
            assertEquals("nosniff", headers.firstValue("X-Content-Type-Options").orElse(""));
            assertTrue(headers.firstValue("Referrer-Policy").isPresent());
            assertTrue(headers.firstValue("X-Request-Id").orElse("").matches("[0-9a-f]{32}"), "nginx's $request_id");
            assertEquals(List.of("nginx"), headers.allValues("Server"), "server_tokens off");
        }
    }

    /** Cache on, then off (DevTools' "Disable cache"); a 404 for an icon would be a console error. */
    @Test
    @Order(2)
    void inABrowserEveryLoadIsServedByTheNextReplicaAndCountsOne() throws Exception {
        Browser.assumeAvailable();
        int replicas = stack.replicas().size();
        try (var browser = Browser.start()) {
            for (boolean cacheDisabled : List.of(false, true)) {
                browser.disableCache(cacheDisabled);
                var servedBy = new ArrayList<String>();
                var counts = new ArrayList<Long>();
                for (int load = 0; load < 3 * replicas; load++) {
                    if (load == 0) {
                        browser.open(stack.uri("/"));
                    } else {
                        browser.reload();
                    }
                    servedBy.add(browser.text("#served-by"));
                    counts.add(Long.parseLong(browser.text("#count")));
                }
                String seen = (cacheDisabled ? "cache disabled" : "cache on") + ": served by " + servedBy + ", counts " + counts;
                System.out.printf("[%s browser] %s%n", getClass().getSimpleName(), seen);
                PageViews.assertRotation(servedBy, counts, replicas);
                assertEquals(List.of(), browser.consoleErrors(), seen);
            }
            for (String scheme : List.of("light", "dark")) {
                browser.prefersColorScheme(scheme);
                assertEquals(List.of(), browser.accessibilityViolations(), "axe-core, " + scheme + " colour scheme");
            }
            browser.prefersColorScheme("light");
            browser.screenshot(Project.root().resolve("stack-tests/target/surefire-reports/"
                    + getClass().getSimpleName() + "-browser.png"));
        }
    }

    @Test
    @Order(3)
    void aReplicaKilledUnderLoadLosesNoRequestCountsNoneTwiceAndServesAgainOnceStarted() {
        String victim = stack.replicas().get(1);
        scenario().run(getClass().getSimpleName() + " replica killed", () -> stack.killReplica(victim), load -> {
            long kill = System.nanoTime();
            // A few seconds of load on the others: on Compose the victim must stay down (docker kill).
            awaitOrExplain("5 s of load after the kill", RESOLVE_DEADLINE, () -> System.nanoTime() - kill
                    > Duration.ofSeconds(5).toNanos() && load.count(s -> s.ok() && s.startNanos() > kill) >= 100);
            stack.startReplica(victim);
            // nginx skips a failed peer for fail_timeout (5 s), then sends it traffic again.
            awaitServesAgain(load, victim, System.nanoTime());
        }).assertLossless();
    }

    /**
     * Requests in flight while Redis went away that got no 2xx may have been counted by Redis
     * before it went: at most one extra count each (docs/reliability.md).
     */
    @Test
    @Order(4)
    void aRedisOutageGivesOnly503WithRetryAfterWithinTheDeadlineAndAnExactCountAfterwards() {
        List<String> replicas = stack.replicas();
        Run run = scenario().run(getClass().getSimpleName() + " Redis stopped", stack::stopRedis, load -> {
            long stopped = System.nanoTime();
            awaitOrExplain("503s while Redis is stopped", RESOLVE_DEADLINE,
                    () -> load.count(s -> s.status() == 503 && s.startNanos() > stopped) >= 2 * CONNECTIONS);
            stack.startRedis();
            long started = System.nanoTime();
            awaitOrExplain("every replica counting again after Redis started", RECOVERY_DEADLINE,
                    () -> replicas.stream().allMatch(r -> load.count(s -> s.ok() && r.equals(s.servedBy())
                            && s.startNanos() > started) >= 3));
        });
        System.out.printf("%s: %d in flight at the stop got no 2xx%n", run.name(), run.ambiguous());
        run.assertOutage();
    }

    @Test
    @Order(5)
    void theCountSurvivesARestartOfRedisOnItsData() throws Exception {
        long total = stack.redisTotal();
        assertTrue(total > 0, "the earlier scenarios counted nothing");
        stack.restartKeepingData();
        assertEquals(total, stack.redisTotal(), "the count after Redis restarted");
        awaitOrExplain("a visit counted after the restart", RESOLVE_DEADLINE, () -> Http.status(stack.uri("/")) == 200);
        assertEquals(total + 1, stack.redisTotal(), "the first 2xx after the restart counts on top of the old total");
    }

    /** What a failure should show beyond the wait's own message: the backend's state. */
    String diagnosis() {
        return "";
    }

    /** Three 2xx of the load from {@code replica}, sent after {@code since}. */
    void awaitServesAgain(LoadClient load, String replica, long since) {
        awaitOrExplain(replica + " to serve the load again", RESOLVE_DEADLINE, () -> load.count(
                s -> s.ok() && replica.equals(s.servedBy()) && s.startNanos() > since) >= 3);
    }

    void awaitOrExplain(String what, Duration timeout, Callable<Boolean> condition) {
        explained(() -> await(what, timeout).until(condition), this::diagnosis);
    }

    /** Load on this stack, for the subclasses' own scenarios too. */
    Scenario scenario() {
        return new Scenario(stack.uri("/"), CONNECTIONS, 100, stack::redisTotal, this::diagnosis);
    }
}

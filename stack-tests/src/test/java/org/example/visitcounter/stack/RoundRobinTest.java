package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.Waits.await;
import static org.example.visitcounter.stack.Waits.explained;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer.OrderAnnotation;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The whole stack on loopback (redis-server, nginx with the shipped config, three replica JVMs):
 * nginx's round robin, the endpoints it hides, and failover when a replica is killed.
 * The tests share one stack and run in order; the last one kills a replica.
 */
@TestMethodOrder(OrderAnnotation.class)
class RoundRobinTest {
    private static final Pattern BODY_SERVED_BY = Pattern.compile("id=\"served-by\">([^<]*)<");
    private static final Pattern BODY_COUNT = Pattern.compile("id=\"count\">(\\d+)<");
    private static final Pattern TOTAL = Pattern.compile("\"total\"\\s*:\\s*(\\d+)");

    private static LocalStack stack;
    private static HttpClient http;
    /** Every visit the stack acknowledged with a 2xx, across the tests: Redis must hold exactly this many. */
    private static long acknowledged;

    @BeforeAll
    static void startStack() {
        stack = LocalStack.start();
        http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(2))
                .build();
    }

    @AfterAll
    static void stopStack() {
        if (stack != null) {
            stack.stop(); // asserts exit status 0 and no process left behind
        }
    }

    @Test
    @Order(1)
    void operationalEndpointsAreReachableOnTheReplicasButNotThroughNginx() throws Exception {
        for (String path : List.of("/metrics", "/healthz", "/readyz")) {
            for (String replica : stack.replicaNames()) {
                assertEquals(200, get(stack.replicaUri(replica).resolve(path)).statusCode(), replica + path);
            }
        }
        // Spellings that Jetty/Javalin route to the same endpoints, or that nginx normalizes to them.
        for (String path : List.of("/metrics", "/healthz", "/readyz", "/metrics/", "/readyz/", "/Metrics",
                "/%6Detrics", "//metrics", "/metrics;x=1", "/healthz?verbose=1")) {
            var response = get(stack.uri(path));
            assertEquals(404, response.statusCode(), "through nginx: " + path);
            assertTrue(response.headers().firstValue("X-Served-By").isEmpty(), "reached a replica: " + path);
        }
        var health = get(stack.uri("/nginx-health"));
        assertEquals(200, health.statusCode());
        assertEquals("ok", health.body().trim());
    }

    @Test
    @Order(1)
    void replicasListenOnTheLoopbackAddressOnly() {
        // local-stack.sh sets HOST=127.0.0.1. 127.0.0.2 is this machine too (all of 127/8 is
        // loopback), so it reaches a replica bound to every interface but not one bound to 127.0.0.1.
        for (String replica : stack.replicaNames()) {
            int port = stack.replicaUri(replica).getPort();
            assertThrows(java.net.ConnectException.class, () -> {
                try (var socket = new java.net.Socket()) {
                    socket.connect(new java.net.InetSocketAddress("127.0.0.2", port), 2000);
                }
            }, replica + " accepts connections on 127.0.0.2:" + port);
        }
    }

    @Test
    @Order(2)
    void sequentialRequestsRotateStrictlyOverTheReplicasAndCountConsecutively() throws Exception {
        int k = 10;
        int n = 3 * k;
        var servedBy = new ArrayList<String>();
        var counts = new ArrayList<Long>();
        for (int i = 0; i < n; i++) {
            var response = get(stack.uri("/"));
            assertEquals(200, response.statusCode(), response::body);
            acknowledged++;
            String replica = response.headers().firstValue("X-Served-By").orElseThrow();
            long count = Long.parseLong(response.headers().firstValue("X-Visit-Count").orElseThrow());
            assertEquals(replica, find(BODY_SERVED_BY, response.body()), "the page names the replica in X-Served-By");
            assertEquals(count, Long.parseLong(find(BODY_COUNT, response.body())), "the page shows X-Visit-Count");
            assertSecurityHeaders(response);
            servedBy.add(replica);
            counts.add(count);
        }

        Map<String, Integer> perReplica = new LinkedHashMap<>();
        servedBy.forEach(r -> perReplica.merge(r, 1, Integer::sum));
        assertEquals(Map.of("web-1", k, "web-2", k, "web-3", k), perReplica, "requests per replica: " + servedBy);
        assertEquals(3, new HashSet<>(servedBy.subList(0, 3)).size(), "first three requests: " + servedBy);
        for (int i = 3; i < n; i++) {
            assertEquals(servedBy.get(i % 3), servedBy.get(i), "the rotation repeats with period 3: " + servedBy);
        }
        assertConsecutive(counts);
    }

    @Test
    @Order(3)
    void killingAReplicaLosesNoRequestCountsNoneTwiceAndTheRestartedOneGetsTrafficAgain() throws Exception {
        String victim = "web-2";
        long oldPid = stack.pid(victim);
        var counts = new ArrayList<Long>();
        var failures = new ArrayList<String>();
        var sent = new AtomicInteger();
        var newPid = new AtomicLong(-1);
        var servedByRestarted = new AtomicInteger();

        // A sequential client, paced at ~100 requests/s (the poll interval), alternating GET / and
        // POST /api/visits (POST exercises nginx's non_idempotent failover). The replica is SIGKILLed
        // mid-stream; the client runs until the supervisor has restarted it and nginx has sent it a
        // few requests again.
        explained(() -> await("the restarted " + victim + " to get traffic", Duration.ofSeconds(90))
                .pollInterval(Duration.ofMillis(10)).until(() -> {
                    int i = sent.getAndIncrement();
                    if (i == 30) {
                        stack.signal(oldPid, "KILL");
                    }
                    HttpResponse<String> response = i % 2 == 0 ? get(stack.uri("/")) : post(stack.uri("/api/visits"));
                    if (response.statusCode() / 100 != 2) {
                        failures.add(i + ": " + response.statusCode() + " " + response.body());
                        return false;
                    }
                    acknowledged++;
                    counts.add(Long.parseLong(response.headers().firstValue("X-Visit-Count").orElseThrow()));
                    String replica = response.headers().firstValue("X-Served-By").orElseThrow();
                    if (i > 30 && newPid.get() < 0) {
                        long current = stack.pid(victim);
                        if (current != oldPid) {
                            newPid.set(current);
                        }
                    }
                    if (newPid.get() > 0 && replica.equals(victim)) {
                        servedByRestarted.incrementAndGet();
                    }
                    return servedByRestarted.get() >= 3;
                }), () -> "new pid " + stack.pid(victim) + "\n" + stack.output());

        assertEquals(List.of(), failures, "requests that failed while " + victim + " was killed and restarted");
        assertNotEquals(oldPid, newPid.get());
        assertTrue(!LocalStack.isAlive(oldPid), "the killed JVM is gone");
        assertConsecutive(counts);
        assertEquals(counts.size(), new HashSet<>(counts).size(), "every acknowledged visit has its own number");
        assertEquals(200, get(stack.replicaUri(victim).resolve("/readyz")).statusCode());
        assertTrue(stack.output().contains(victim + " restarted"), stack::output);

        // Redis holds exactly the visits acknowledged with a 2xx: none lost, none counted twice.
        var tally = get(stack.replicaUri("web-1").resolve("/api/visits"));
        assertEquals(200, tally.statusCode());
        assertEquals(acknowledged, Long.parseLong(find(TOTAL, tally.body())), tally.body());
    }

    private static void assertConsecutive(List<Long> counts) {
        for (int i = 1; i < counts.size(); i++) {
            assertEquals(counts.get(i - 1) + 1, counts.get(i), "counts are consecutive: " + counts);
        }
    }

    private static void assertSecurityHeaders(HttpResponse<?> response) {
        var headers = response.headers();
        assertTrue(headers.firstValue("Content-Security-Policy").orElse("").contains("default-src 'self'"));
        assertEquals("nosniff", headers.firstValue("X-Content-Type-Options").orElse(""));
        assertTrue(headers.firstValue("Referrer-Policy").isPresent());
        assertTrue(headers.firstValue("X-Request-Id").orElse("").matches("[0-9a-f]{32}"), "nginx's $request_id");
        assertEquals(List.of("nginx"), headers.allValues("Server"), "server_tokens off");
    }

    private static String find(Pattern pattern, String text) {
        Matcher m = pattern.matcher(text);
        assertTrue(m.find(), () -> pattern + " not found in:\n" + text);
        return m.group(1);
    }

    private static HttpResponse<String> get(URI uri) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> post(URI uri) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10))
                        .POST(HttpRequest.BodyPublishers.noBody()).build(),
                HttpResponse.BodyHandlers.ofString());
    }
}

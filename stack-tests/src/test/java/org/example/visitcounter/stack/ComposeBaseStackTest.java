package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.Waits.await;
import static org.example.visitcounter.stack.Waits.explained;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.example.visitcounter.RedisVisits;
import org.example.visitcounter.stack.LoadClient.Result;
import org.example.visitcounter.stack.LoadClient.Sample;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer.OrderAnnotation;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The base stack, compose.yaml alone, on a real Docker engine, driven by the commands README.md
 * shows, word for word ({@link DockerCli}), under a throw-away project name and a free loopback
 * port, so a stack a developer runs (visit-counter, 8080) is never touched.
 *
 * <p>One stack for the class ({@code up --build -d --wait} before the first scenario,
 * {@code down -v} after the last, whatever happened). The scenarios run in order; each leaves 3
 * healthy replicas behind except the last, which takes the stack down. Load comes from
 * {@link LoadClient} (a few kept-alive connections, every request's outcome recorded), and after
 * every scenario under load Redis's total, read with {@code compose exec -T redis redis-cli}, has
 * grown by exactly the 2xx the clients saw, with the one bound README ("How it behaves",
 * "Late commands count nothing") documents for a Redis that goes away with requests in flight.
 *
 * <p>Waits are Awaitility polls with deadlines, never sleeps standing in for readiness. Every
 * scenario prints its figures; {@link #down()} prints them all as a table.
 */
@TestMethodOrder(OrderAnnotation.class)
class ComposeBaseStackTest {
    /** The first build compiles the app and trains the AOT cache inside the image build; later ones hit the cache. */
    private static final Duration BUILD_TIMEOUT = Duration.ofMinutes(15);
    private static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(2);
    private static final int REPLICAS = 3;
    private static final int SCALED = 5;
    /** Load: a few connections (the machine has 2 cores, shared with 3 JVMs, nginx and Redis). */
    private static final int CONNECTIONS = 3;
    /**
     * nginx re-resolves `web` every few seconds (upstream.conf.template: `resolver ... valid=`, at
     * most 5 s) and skips a peer that failed for fail_timeout=5s: a change of replicas shows within
     * about 10 s. Three times that, for a loaded machine.
     */
    private static final Duration RESOLVE_DEADLINE = Duration.ofSeconds(30);
    /** A (re)started replica reports healthy once /readyz answers (healthcheck start_interval 1 s). */
    private static final Duration HEALTHY_DEADLINE = Duration.ofSeconds(60);
    /** The replicas' defaults (README, Configuration): at most this long on Redis, then 503. */
    private static final Duration REQUEST_DEADLINE = Duration.ofMillis(2000);
    /** What an answer may take beyond the deadline: the 503 itself, nginx, a loaded 2-core machine. */
    private static final Duration LATENCY_MARGIN = Duration.ofMillis(1000);
    /**
     * From `compose start redis` until every replica counts again. Under Compose a replica reaches
     * Redis by its service name: the JVM caches a failed lookup for 10 s
     * (networkaddress.cache.negative.ttl in java.security), and while Redis's container is stopped
     * Docker's DNS has no `redis`, so a replica that looked the name up during the outage cannot
     * reach Redis until that entry expires, then waits for its next backoff probe (cap 1 s) and
     * nginx. 10 s + 1 s + the request deadline, with room for a loaded machine.
     */
    private static final Duration RECOVERY_DEADLINE = Duration.ofSeconds(20);
    private static final Pattern BODY_SERVED_BY = Pattern.compile("id=\"served-by\">([^<]*)<");

    private static String project;
    private static DockerCli cli;
    private static URI base;
    private static HttpClient http;
    private static final List<String> figures = new ArrayList<>();

    @BeforeAll
    static void up() {
        DockerCli.assumeEngine();
        project = "vc-base-" + UUID.randomUUID().toString().substring(0, 8);
        int port = LocalStack.freePortBlock(1);
        cli = new DockerCli(DockerCli.projectEnv(project, port));
        base = URI.create("http://127.0.0.1:" + port + "/");
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        long start = System.nanoTime();
        var up = cli.docker(BUILD_TIMEOUT, "compose up --build -d --wait");
        System.out.printf("[%s] compose up --build -d --wait: exit %d after %d ms (project %s, http://127.0.0.1:%d)%n",
                "1 up", up.exit(), millisSince(start), project, port);
        up.ok("docker compose up --build -d --wait");
    }

    @AfterAll
    static void down() {
        if (cli == null) {
            return; // skipped: no engine
        }
        try {
            System.out.println("ComposeBaseStackTest, project " + project + ": the scenarios under load");
            figures.forEach(System.out::println);
            var down = cli.docker(COMMAND_TIMEOUT, "compose down -v");
            if (down.exit() != 0) {
                System.out.println("compose down -v failed (exit " + down.exit() + "):\n" + down.output());
            }
        } finally {
            // Only what this class created: the two images the build tagged with this project's name.
            cli.run(COMMAND_TIMEOUT, "image", "rm", project + "-web", project + "-nginx");
            if (http != null) {
                http.close();
            }
        }
    }

    // ---- 1. up ------------------------------------------------------------------------------

    @Test
    @Order(1)
    void upStartsRedisThreeReplicasAndNginxAllHealthy() {
        List<PsRow> rows = composePs();
        Map<String, Long> byService = rows.stream()
                .collect(Collectors.groupingBy(PsRow::service, TreeMap::new, Collectors.counting()));
        assertEquals(Map.of("nginx", 1L, "redis", 1L, "web", (long) REPLICAS), byService, "compose ps: " + rows);
        for (PsRow row : rows) {
            assertTrue(row.status().startsWith("Up") && row.status().contains("(healthy)"), "not healthy: " + row);
        }
        System.out.printf("[1 up] compose ps: %s%n", rows);
    }

    // ---- 2. strict rotation -----------------------------------------------------------------

    @Test
    @Order(2)
    void sequentialVisitsCountUpByOneAndRotateOverThreeReplicasInAFixedOrder() {
        awaitProxyServes();
        Set<String> replicas = containerIds("web");
        int n = 5 * REPLICAS;
        List<Long> counts = new ArrayList<>();
        List<String> servedBy = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            HttpResponse<String> response = get("/");
            assertEquals(200, response.statusCode(), "GET / #" + i + ": " + response.body());
            String replica = header(response, "X-Served-By");
            counts.add(Long.parseLong(header(response, "X-Visit-Count")));
            servedBy.add(replica);
            Matcher body = BODY_SERVED_BY.matcher(response.body());
            assertTrue(body.find(), "the page names no replica:\n" + response.body());
            assertEquals(replica, body.group(1), "the page names the replica in X-Served-By");
        }
        for (int i = 1; i < n; i++) {
            assertEquals(counts.get(i - 1) + 1, counts.get(i), "each visit counts exactly one: " + counts);
        }
        assertEquals(replicas, new HashSet<>(servedBy.subList(0, REPLICAS)),
                "the first 3 requests hit the 3 web containers (a replica's name is its short container id): " + servedBy);
        for (int i = REPLICAS; i < n; i++) {
            assertEquals(servedBy.get(i - REPLICAS), servedBy.get(i), "the rotation repeats with period 3: " + servedBy);
        }
        System.out.printf("[2 rotation] %d sequential GET /: counts %d..%d, order %s%n", n, counts.get(0),
                counts.get(n - 1), servedBy.subList(0, REPLICAS));
    }

    // ---- 3. scale to 5 and back to 3 --------------------------------------------------------

    @Test
    @Order(3)
    void scaledToFiveEveryReplicaServesThenBackToThreeUnderLoad() {
        String nginxBefore = nginxIdentity();
        long totalBefore = redisTotal();
        var sequential = new Sequential();

        long scaleUp = System.nanoTime();
        cli.docker(COMMAND_TIMEOUT, "compose up -d --scale web=5").ok("docker compose up -d --scale web=5");
        long upReturned = System.nanoTime();
        Set<String> five = containerIds("web");
        assertEquals(SCALED, five.size(), "web containers after --scale web=5: " + five);
        // Round robin over 5 peers: 10 sequential requests hit each twice once nginx knows all 5.
        awaitOrExplain("all 5 replicas in nginx's rotation (10 sequential GET /, 2 each)", RESOLVE_DEADLINE,
                () -> sequential.round(10).equals(each(five, 2)));
        long allFive = System.nanoTime();
        assertEquals(nginxBefore, nginxIdentity(), "scaling touched nginx (recreated or restarted)");
        String upFigures = String.format("scale 3->5: command %d ms, all 5 serving %d ms after it returned (%d sequential requests)",
                (upReturned - scaleUp) / 1_000_000, (allFive - upReturned) / 1_000_000, sequential.sent);
        System.out.println("[3 scale] " + upFigures);

        // The replicas' addresses, before two go away: nginx's log names upstreams by address.
        Map<String, List<String>> addresses = new TreeMap<>();
        five.forEach(id -> addresses.put(id, upstreamAddresses(id)));
        Instant logsFrom = Instant.now().minusSeconds(1);
        Set<String> three;
        long downReturned;
        long settled;
        Result result;
        try (var load = LoadClient.start(base, CONNECTIONS)) {
            awaitSteady(load);
            long scaleDown = System.nanoTime();
            cli.docker(COMMAND_TIMEOUT, "compose up -d --scale web=3").ok("docker compose up -d --scale web=3");
            downReturned = System.nanoTime();
            System.out.printf("[3 scale] scale 5->3: command %d ms%n", (downReturned - scaleDown) / 1_000_000);
            three = containerIds("web");
            assertEquals(REPLICAS, three.size(), "web containers after --scale web=3: " + three);
            assertTrue(five.containsAll(three), "scaling down removes replicas, it starts none: " + three + " of " + five);
            // Past a re-resolve and a fail_timeout (10 s): nginx has let go of the removed replicas,
            // and every remaining one keeps getting traffic.
            Set<String> remaining = three;
            long from = downReturned;
            awaitOrExplain("the load spread over the 3 remaining replicas", RESOLVE_DEADLINE,
                    () -> System.nanoTime() - from > Duration.ofSeconds(10).toNanos()
                            && remaining.stream().allMatch(r -> load.count(s -> s.ok() && r.equals(s.servedBy())
                                    && s.startNanos() > from) >= 20));
            settled = System.nanoTime();
            result = load.stop();
        }
        long afterDown = downReturned;
        Set<String> servedAfter = result.samples().stream().filter(s -> s.ok() && s.startNanos() > afterDown)
                .map(Sample::servedBy).collect(Collectors.toSet());
        // Nothing else is running now: sequential requests show nginx's rotation itself.
        Set<String> remaining = three;
        awaitOrExplain("nginx's rotation over exactly the 3 remaining replicas (9 sequential GET /)", RESOLVE_DEADLINE,
                () -> sequential.round(9).equals(each(remaining, 3)));
        long counted = redisTotal() - totalBefore;
        long acknowledged = sequential.ok + result.ok();
        String row = row("3 scale 5->3 under load", result, counted - result.ok() - sequential.ok);
        figures.add(row);
        System.out.printf("[3 scale] %s; load spread over the 3 remaining %d ms after the command returned; "
                + "Redis +%d for %d 2xx (%d sequential, %d under load)%n", row, (settled - downReturned) / 1_000_000,
                counted, acknowledged, sequential.ok, result.ok());

        assertEquals(List.of(), sequential.failures, "sequential requests that failed while scaling");
        assertOnlyNoLiveUpstream502s(result, five.stream().filter(id -> !remaining.contains(id))
                .flatMap(id -> addresses.get(id).stream()).collect(Collectors.toSet()), logsFrom);
        assertEquals(three, servedAfter, "replicas that served after `--scale web=3` returned");
        assertEquals(acknowledged, counted, "Redis total growth vs 2xx seen");
        assertEquals(0, result.duplicateCounts(), "2xx with a number another 2xx had");
        assertEquals(nginxBefore, nginxIdentity(), "scaling touched nginx (recreated or restarted)");
    }

    // ---- 4. a replica killed ----------------------------------------------------------------

    /**
     * {@code docker kill} is an operator's stop: Docker disables the container's restart policy
     * until the container is started again (docker-kill(1); moby's killWithSignal cancels the
     * restart manager for SIGKILL), so `restart: unless-stopped` does not bring it back, and the
     * test checks that it stays down. It then starts it, as an operator would, and checks it gets
     * traffic again. A crash, which the restart policy does handle, is the next scenario.
     */
    @Test
    @Order(4)
    void aReplicaKilledUnderLoadLosesNoRequestCountsNoneTwiceAndServesAgainOnceStarted() {
        Container victim = webContainer(2);
        String restartsBefore = inspect(victim.id(), "{{.RestartCount}}");
        long totalBefore = redisTotal();
        long killed;
        long startedAgain;
        long servesAgain;
        String afterKill;
        Result result;
        try (var load = LoadClient.start(base, CONNECTIONS)) {
            awaitSteady(load);
            long kill = System.nanoTime();
            cli.run(COMMAND_TIMEOUT, "kill", victim.id()).ok("docker kill " + victim.name());
            killed = System.nanoTime();
            // A few seconds of load on the two others; Docker would have restarted a crashed
            // container within this window (its first restart delay is 100 ms).
            awaitOrExplain("5 s of load after the kill", RESOLVE_DEADLINE, () -> System.nanoTime() - kill
                    > Duration.ofSeconds(5).toNanos() && load.count(s -> s.ok() && s.startNanos() > killed) >= 100);
            afterKill = inspect(victim.id(), "{{.State.Status}}/{{.State.ExitCode}}/{{.RestartCount}}");
            cli.run(COMMAND_TIMEOUT, "start", victim.id()).ok("docker start " + victim.name());
            startedAgain = System.nanoTime();
            servesAgain = awaitServingAgain(victim, load);
            result = load.stop();
        }
        long counted = redisTotal() - totalBefore;
        String row = row("4 docker kill web-2", result, counted - result.ok());
        figures.add(row);
        System.out.printf("[4 kill] %s; after the kill: %s; serves again %d ms after `docker start`%n", row, afterKill,
                (servesAgain - startedAgain) / 1_000_000);

        assertEquals("exited/137/" + restartsBefore, afterKill, victim.name()
                + " after docker kill (status/exit code/restart count): the restart policy does not apply to docker kill");
        assertNothingLostOrCountedTwice(result, counted, "docker kill");
    }

    /**
     * A replica that crashes (its JVM dies of a fatal signal: SIGSEGV sent from inside the
     * container, which HotSpot treats as a crash and aborts) is restarted by Docker
     * (`restart: unless-stopped`) and gets traffic again, with no request lost.
     */
    @Test
    @Order(5)
    void aReplicaThatCrashesUnderLoadIsRestartedByItsRestartPolicyAndServesAgain() {
        Container victim = webContainer(1);
        String restartsBefore = inspect(victim.id(), "{{.RestartCount}}");
        long totalBefore = redisTotal();
        long crashed;
        long servesAgain;
        long restarted;
        Result result;
        try (var load = LoadClient.start(base, CONNECTIONS)) {
            awaitSteady(load);
            cli.run(COMMAND_TIMEOUT, "exec", victim.id(), "sh", "-c", "kill -SEGV 1").ok("kill -SEGV 1 in " + victim.name());
            crashed = System.nanoTime();
            awaitOrExplain(victim.name() + " restarted by Docker", HEALTHY_DEADLINE,
                    () -> !inspect(victim.id(), "{{.RestartCount}}").equals(restartsBefore));
            restarted = System.nanoTime();
            servesAgain = awaitServingAgain(victim, load);
            result = load.stop();
        }
        long counted = redisTotal() - totalBefore;
        String row = row("4b crash (SIGSEGV) web-1", result, counted - result.ok());
        figures.add(row);
        System.out.printf("[4b crash] %s; restarted by Docker %d ms after the signal, serving again %d ms after it;"
                + " last exit code %s%n", row, (restarted - crashed) / 1_000_000, (servesAgain - crashed) / 1_000_000,
                inspect(victim.id(), "{{.State.ExitCode}}"));

        assertNothingLostOrCountedTwice(result, counted, "replica crash");
    }

    // ---- 5. Redis stopped and started -------------------------------------------------------

    @Test
    @Order(6)
    void redisStoppedAndStartedUnderLoadGivesOnly503WithRetryAfterThenRecoversAndCountsExactly() {
        Set<String> replicas = containerIds("web");
        long totalBefore = redisTotal();
        long stop;
        long stopped;
        long started;
        long firstOk;
        long allOk;
        Map<String, Long> recoveredMillis = new LinkedHashMap<>();
        Result result;
        try (var load = LoadClient.start(base, CONNECTIONS)) {
            awaitSteady(load);
            stop = System.nanoTime();
            cli.docker(COMMAND_TIMEOUT, "compose stop redis").ok("docker compose stop redis");
            stopped = System.nanoTime();
            // The outage, as the clients see it: 503s for requests sent after Redis stopped.
            awaitOrExplain("503s while Redis is stopped", RESOLVE_DEADLINE,
                    () -> load.count(s -> s.status() == 503 && s.startNanos() > stopped) >= 2 * CONNECTIONS);
            cli.docker(COMMAND_TIMEOUT, "compose start redis").ok("docker compose start redis");
            started = System.nanoTime();
            awaitOrExplain("a 2xx after `compose start redis`", RECOVERY_DEADLINE,
                    () -> load.count(s -> s.ok() && s.startNanos() > started) > 0);
            firstOk = load.samples().stream().filter(s -> s.ok() && s.startNanos() > started)
                    .mapToLong(Sample::endNanos).min().orElseThrow();
            awaitOrExplain("every replica counting again after `compose start redis`", RECOVERY_DEADLINE,
                    () -> replicas.stream().allMatch(r -> load.count(s -> s.ok() && r.equals(s.servedBy())
                            && s.startNanos() > started) >= 3));
            allOk = System.nanoTime();
            for (String r : replicas) {
                recoveredMillis.put(r, (load.samples().stream()
                        .filter(s -> s.ok() && r.equals(s.servedBy()) && s.startNanos() > started)
                        .mapToLong(Sample::endNanos).min().orElseThrow() - started) / 1_000_000);
            }
            awaitOrExplain("steady load after the recovery", RESOLVE_DEADLINE,
                    () -> load.count(s -> s.ok() && s.startNanos() > allOk) >= 100);
            result = load.stop();
        }
        long counted = redisTotal() - totalBefore;
        long extra = counted - result.ok();
        // Requests in flight while Redis went away (from the stop command until it had returned)
        // that got no 2xx: Redis may have run their count and died before the reply left.
        long ambiguous = result.failuresInFlight(stop, stopped);
        long only503 = result.failures().stream().filter(s -> s.status() == 503).count();
        String row = row("5 compose stop/start redis", result, extra);
        figures.add(row);
        System.out.printf("[5 redis] %s; outage (stop returned to start returned) %d ms; first 2xx %d ms and every"
                + " replica counting %d ms after `compose start redis` returned, per replica %s; Redis +%d for %d 2xx"
                + " (%+d; %d requests in flight at the stop got no 2xx)%n", row, (started - stopped) / 1_000_000,
                (firstOk - started) / 1_000_000, (allOk - started) / 1_000_000, recoveredMillis, counted, result.ok(),
                extra, ambiguous);

        var wrong = result.failures().stream().filter(s -> s.status() != 503 || s.retryAfter() == null).limit(20)
                .map(Sample::toString).toList();
        assertEquals(List.of(), wrong, "failures other than 503 with Retry-After");
        assertTrue(only503 > 0, "no 503 at all: did Redis stop?");
        long limit = REQUEST_DEADLINE.plus(LATENCY_MARGIN).toMillis();
        var slow = result.samples().stream().filter(s -> s.latencyMillis() > limit).limit(20).map(Sample::toString).toList();
        assertEquals(List.of(), slow, "requests held past the deadline + margin (" + limit + " ms)");
        assertEquals(0, result.retried(), "requests resent after nginx closed a kept-alive connection");
        // README: nothing acknowledged is lost; a count Redis ran just as it went away, whose reply
        // was lost, may be counted without a 2xx: at most one per request in flight at that moment.
        assertTrue(extra >= 0, "acknowledged counts lost: " + -extra);
        assertTrue(extra <= ambiguous, "counted " + extra + " visits that got no 2xx; only " + ambiguous
                + " requests were in flight while Redis stopped");
        assertEquals(0, result.duplicateCounts(), "2xx with a number another 2xx had");
    }

    // ---- 6. down ----------------------------------------------------------------------------

    @Test
    @Order(7)
    void downRemovesEveryContainerAndNetworkAndKeepsTheCountUntilDownWithVolumes() throws Exception {
        long total = redisTotal();
        long start = System.nanoTime();
        cli.docker(COMMAND_TIMEOUT, "compose down").ok("docker compose down");
        long took = millisSince(start);
        var containersLeft = cli.run(COMMAND_TIMEOUT, "ps", "-a", "--filter", projectLabel(), "--format", "{{.Names}}")
                .ok("docker ps -a").output().strip();
        var networksLeft = cli.run(COMMAND_TIMEOUT, "network", "ls", "--filter", projectLabel(), "--format", "{{.Name}}")
                .ok("docker network ls").output().strip();
        System.out.printf("[6 down] compose down: %d ms; containers left: [%s], networks left: [%s]%n", took,
                containersLeft, networksLeft);
        assertEquals("", containersLeft, "containers of project " + project + " after compose down");
        assertEquals("", networksLeft, "networks of project " + project + " after compose down");

        // README: `docker compose down` keeps Redis's data, `-v` drops it too.
        String volume = project + "_redis-data";
        cli.run(COMMAND_TIMEOUT, "volume", "inspect", volume).ok("the volume " + volume + " after compose down");
        cli.docker(BUILD_TIMEOUT, "compose up -d --wait").ok("docker compose up -d --wait");
        assertEquals(total, redisTotal(), "the count after down + up");
        cli.docker(COMMAND_TIMEOUT, "compose down -v").ok("docker compose down -v");
        assertTrue(cli.run(COMMAND_TIMEOUT, "volume", "inspect", volume).exit() != 0, volume + " after down -v");
    }

    /**
     * The one failure scaling down can give with this nginx configuration, and nothing else: a
     * 502 that nginx logged as "no live upstreams" after an attempt on a replica being removed.
     *
     * <p>Why it happens: a replica that is being stopped closes its listener while Docker's DNS
     * still lists it (it leaves DNS only once its container has stopped), so nginx's first attempt
     * on it is refused and nginx skips it for fail_timeout (5 s). nginx drops its address only at
     * its next re-resolve (resolver valid=), after the container is gone; if the fail_timeout lapses first,
     * nginx tries the vanished address again, the connect times out (1 s: nothing answers, not even
     * a reset), and if the re-resolve that drops the address lands meanwhile, the upstream's peer
     * set has changed since the request began. nginx's round robin then refuses to pick another
     * peer for that request (ngx_http_upstream_round_robin.c: {@code if (peers->config &&
     * rrp->config != *peers->config) goto busy;}, from the runtime `resolve` support): "no live
     * upstreams", 502, although three replicas are up. Such a request never reached a replica
     * that could count it, so the exact total still holds (checked by the caller). Seen with
     * valid=5s (2 requests in one run of several); the shorter the resolver's valid= period is
     * against fail_timeout, the rarer it gets, but any failed attempt that straddles a change of
     * the peer set ends this way.
     */
    private static void assertOnlyNoLiveUpstream502s(Result result, Set<String> removedAddresses, Instant logsFrom) {
        var other = result.failures().stream().filter(s -> s.status() != 502).limit(20).map(Sample::toString).toList();
        assertEquals(List.of(), other, "scale-down: failures other than 502 (" + result.failuresByStatus() + ")");
        assertEquals(0, result.retried(), "scale-down: requests resent after nginx closed a kept-alive connection");
        List<AccessLine> logged = nginxAccessLog(logsFrom);
        List<AccessLine> failedAtNginx = logged.stream().filter(l -> l.status() / 100 != 2).toList();
        long clientSaw = result.failures().size();
        System.out.printf("[3 scale] scale-down: %d request(s) failed; nginx logged %d requests since %s, failed: %s;"
                + " removed replicas' addresses %s%n", clientSaw, logged.size(), logsFrom, failedAtNginx, removedAddresses);
        assertTrue(logged.size() >= result.samples().size(), "nginx's access log: " + logged.size() + " lines parsed for "
                + result.samples().size() + " requests of the load");
        for (AccessLine line : failedAtNginx) {
            List<String> tried = line.upstreams().subList(0, line.upstreams().size() - 1);
            assertTrue(line.status() == 502 && line.upstreams().getLast().equals("web") && !tried.isEmpty()
                    && removedAddresses.containsAll(tried), "scale-down: a failure other than nginx's \"no live upstreams\""
                    + " after attempts on removed replicas only (" + removedAddresses + "): " + line);
        }
        assertEquals(clientSaw, failedAtNginx.size(), "scale-down: failures the load saw vs failures nginx logged "
                + failedAtNginx);
    }

    // ---- the stack --------------------------------------------------------------------------

    /** One row of `docker compose ps` (its table, as README shows the command). */
    record PsRow(String name, String service, String status) {
        @Override
        public String toString() {
            return name + " (" + service + "): " + status;
        }
    }

    /**
     * `docker compose ps` as README writes it, parsed by the header's column positions (a cell
     * such as STATUS "Up 5 seconds (healthy)" has blanks in it).
     */
    private static List<PsRow> composePs() {
        List<String> lines = cli.docker(COMMAND_TIMEOUT, "compose ps").ok("docker compose ps").output().lines().toList();
        int header = -1;
        for (int i = 0; i < lines.size() && header < 0; i++) {
            if (lines.get(i).startsWith("NAME ")) {
                header = i;
            }
        }
        assertTrue(header >= 0, "no header in compose ps:\n" + String.join("\n", lines));
        String h = lines.get(header);
        int service = h.indexOf("SERVICE");
        int created = h.indexOf("CREATED");
        int status = h.indexOf("STATUS");
        int ports = h.indexOf("PORTS");
        assertTrue(service > 0 && created > service && status > created && ports > status, "compose ps header: " + h);
        List<PsRow> rows = new ArrayList<>();
        for (String line : lines.subList(header + 1, lines.size())) {
            if (line.isBlank()) {
                continue;
            }
            rows.add(new PsRow(cell(line, 0, service).split("\\s+")[0], cell(line, service, created),
                    cell(line, status, ports)));
        }
        return rows;
    }

    private static String cell(String line, int from, int to) {
        return from >= line.length() ? "" : line.substring(from, Math.min(to, line.length())).strip();
    }

    /** A container of the project, as `docker ps` names it. id: the short id, the replica's host name. */
    record Container(String id, String name, String service) {}

    private static List<Container> containers(boolean all) {
        List<String> words = new ArrayList<>(List.of("ps"));
        if (all) {
            words.add("-a");
        }
        words.addAll(List.of("--filter", projectLabel(), "--format",
                "{{.ID}}|{{.Names}}|{{.Label \"com.docker.compose.service\"}}"));
        return cli.run(COMMAND_TIMEOUT, words.toArray(String[]::new)).ok("docker ps").output().lines()
                .filter(l -> !l.isBlank()).map(l -> l.strip().split("\\|"))
                .map(f -> new Container(f[0], f[1], f[2])).toList();
    }

    /** The running containers of a service: their short ids, which the replicas put in X-Served-By. */
    private static Set<String> containerIds(String service) {
        return containers(false).stream().filter(c -> c.service().equals(service)).map(Container::id)
                .collect(Collectors.toCollection(java.util.TreeSet::new));
    }

    private static Container webContainer(int number) {
        String name = project + "-web-" + number;
        return containers(false).stream().filter(c -> c.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no running container " + name + ": " + containers(true)));
    }

    private static String projectLabel() {
        return "label=com.docker.compose.project=" + project;
    }

    private static String inspect(String container, String format) {
        return cli.run(COMMAND_TIMEOUT, "inspect", "--format", format, container).ok("docker inspect " + container)
                .output().strip();
    }

    /** The addresses (ip:8080) nginx reaches a replica at: one per network it is on. */
    private static List<String> upstreamAddresses(String container) {
        return List.of(inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}:8080 {{end}}").split("\\s+"));
    }

    /** One line of nginx's access log (proxy.conf's log_format vc_upstream). */
    record AccessLine(String request, int status, String requestId, List<String> upstreams, String upstreamStatus) {
        @Override
        public String toString() {
            return status + " \"" + request + "\" rid=" + requestId + " upstream=" + String.join(", ", upstreams)
                    + " ustatus=" + upstreamStatus;
        }
    }

    private static final Pattern ACCESS_LINE = Pattern.compile(
            "\"([^\"]*)\" (\\d{3}) \\d+ rid=(\\S+) upstream=(.*?) ustatus=(.*?) uct=");

    /** nginx's access log lines since {@code from} (`compose logs`, for the diagnosis). */
    private static List<AccessLine> nginxAccessLog(Instant from) {
        String out = cli.run(COMMAND_TIMEOUT, "compose", "logs", "--no-color", "--no-log-prefix", "--since",
                from.truncatedTo(ChronoUnit.SECONDS).toString(), "nginx").ok("docker compose logs nginx").output();
        List<AccessLine> lines = new ArrayList<>();
        for (String line : out.lines().toList()) {
            Matcher m = ACCESS_LINE.matcher(line);
            if (m.find()) {
                lines.add(new AccessLine(m.group(1), Integer.parseInt(m.group(2)), m.group(3),
                        List.of(m.group(4).strip().split(", | : ")), m.group(5).strip()));
            }
        }
        return lines;
    }

    /** nginx's container and its start: changes if nginx is recreated or restarted. */
    private static String nginxIdentity() {
        String id = containerIds("nginx").stream().findFirst().orElseThrow(() -> new AssertionError("no nginx"));
        return inspect(id, "{{.Id}}/{{.State.StartedAt}}/{{.RestartCount}}");
    }

    private static void awaitHealthy(Container c) {
        awaitOrExplain(c.name() + " healthy", HEALTHY_DEADLINE,
                () -> inspect(c.id(), "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}")
                        .equals("running/healthy"),
                () -> "its state: " + inspect(c.id(), "{{json .State}}") + "\nits last log lines:\n"
                        + cli.run(COMMAND_TIMEOUT, "logs", "--tail", "40", c.id()).output());
    }

    /** Waits for {@code victim} to be healthy and then to serve the load again; returns when it did. */
    private static long awaitServingAgain(Container victim, LoadClient load) {
        awaitHealthy(victim);
        long healthy = System.nanoTime();
        awaitOrExplain(victim.name() + " to serve the load again", RESOLVE_DEADLINE, () -> load.count(
                s -> s.ok() && victim.id().equals(s.servedBy()) && s.startNanos() > healthy) >= 3);
        return System.nanoTime();
    }

    private static void awaitOrExplain(String what, Duration timeout, Callable<Boolean> condition) {
        awaitOrExplain(what, timeout, condition, () -> "");
    }

    /** A wait, and on a timeout what the stack looked like then. */
    private static void awaitOrExplain(String what, Duration timeout, Callable<Boolean> condition,
            Callable<String> diagnosis) {
        explained(() -> await(what, timeout).until(condition), () -> diagnosis.call() + "\ncompose ps:\n"
                + cli.docker(COMMAND_TIMEOUT, "compose ps").output() + "load average: " + loadAverage());
    }

    /** The machine's load average (2 cores): other tests share the engine and the CPUs. */
    private static String loadAverage() {
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).strip();
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** Redis's total, read inside its container ({@code RedisVisits.TOTAL_KEY}). */
    private static long redisTotal() {
        String out = cli.docker(COMMAND_TIMEOUT, "compose exec -T redis redis-cli GET " + RedisVisits.TOTAL_KEY)
                .ok("redis-cli GET").output().strip();
        List<String> lines = out.lines().toList();
        String value = lines.isEmpty() ? "" : lines.get(lines.size() - 1).strip();
        return value.isEmpty() ? 0 : Long.parseLong(value);
    }

    // ---- HTTP ---------------------------------------------------------------------------------

    /**
     * nginx reports healthy once it listens; its `resolve` upstream fills in moments later. Polls
     * the non-counting endpoint through the proxy, with a deadline.
     */
    private static void awaitProxyServes() {
        awaitOrExplain("nginx to serve GET /api/visits with 200", RESOLVE_DEADLINE, () -> {
            try {
                return http.send(HttpRequest.newBuilder(base.resolve("/api/visits")).timeout(Duration.ofSeconds(5)).GET()
                        .build(), HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
            } catch (IOException e) {
                return false;
            }
        });
    }

    private static HttpResponse<String> get(String path) {
        try {
            return http.send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(10)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new AssertionError("GET " + path + " failed: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static String header(HttpResponse<?> response, String name) {
        String value = response.headers().firstValue(name).orElse(null);
        assertNotNull(value, "no " + name + " header: " + response.headers().map());
        return value.strip();
    }

    /** Sequential GET / from the test thread, with the bookkeeping the exact total needs. */
    private static final class Sequential {
        long sent;
        long ok;
        final List<String> failures = new ArrayList<>();

        /** {@code n} sequential GET /: how many each replica served. */
        Map<String, Integer> round(int n) {
            Map<String, Integer> served = new TreeMap<>();
            for (int i = 0; i < n; i++) {
                sent++;
                HttpResponse<String> r;
                try {
                    r = get("/");
                } catch (AssertionError e) {
                    failures.add(e.getMessage());
                    continue;
                }
                if (r.statusCode() / 100 != 2) {
                    failures.add(r.statusCode() + " " + r.body());
                    continue;
                }
                ok++;
                served.merge(header(r, "X-Served-By"), 1, Integer::sum);
            }
            return served;
        }
    }

    private static Map<String, Integer> each(Set<String> replicas, int n) {
        return replicas.stream().collect(Collectors.toMap(r -> r, r -> n, (a, b) -> a, TreeMap::new));
    }

    private static void awaitSteady(LoadClient load) {
        awaitOrExplain("steady load (100 2xx)", RESOLVE_DEADLINE, () -> load.count(Sample::ok) >= 100, () -> {
            var sofar = new Result(load.connections(), load.samples());
            return "the load so far: " + sofar.samples().size() + " requests, " + sofar.ok() + " 2xx, non-2xx "
                    + sofar.failuresByStatus() + ", first failures " + sofar.failures().stream().limit(5).toList();
        });
    }

    /** Every request answered 2xx, Redis counted each once, and no two carried the same number. */
    private static void assertNothingLostOrCountedTwice(Result result, long counted, String what) {
        assertNoFailures(result, what);
        assertEquals(result.ok(), counted, "Redis total growth vs 2xx seen");
        assertEquals(0, result.duplicateCounts(), "2xx with a number another 2xx had");
    }

    private static void assertNoFailures(Result result, String what) {
        assertEquals(List.of(), result.failures().stream().limit(20).map(Sample::toString).toList(),
                what + ": failed requests (" + result.failuresByStatus() + ")");
        assertEquals(0, result.retried(), what + ": requests resent after nginx closed a kept-alive connection");
    }

    private static String row(String name, Result r, long extra) {
        return String.format("| %-26s | %d conn | %6d requests | %6d 2xx | non-2xx %-12s | %d resent | max %5d ms | Redis %+d vs 2xx |",
                name, r.connections(), r.samples().size(), r.ok(), r.failuresByStatus().isEmpty() ? "0" : r.failuresByStatus(),
                r.retried(), r.maxLatencyMillis(), extra);
    }

    private static long millisSince(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000;
    }
}

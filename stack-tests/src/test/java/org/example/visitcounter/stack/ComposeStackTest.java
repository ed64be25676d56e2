package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.example.visitcounter.stack.support.DocCommands;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.LoadClient.Result;
import org.example.visitcounter.stack.support.LoadClient.Run;
import org.example.visitcounter.stack.support.LoadClient.Sample;
import org.example.visitcounter.stack.support.PageViews;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The shared promises on compose.yaml alone, on a real Docker engine; then what only Docker does:
 * {@code --scale} under load without touching nginx, a crashed replica restarted by its policy, and
 * what {@code up} starts, what {@code down} removes and keeps, and what {@code down -v} drops.
 */
@Tag("docker")
class ComposeStackTest extends StackPromisesTest {
    private static final int REPLICAS = 3;
    private static final int SCALED = 5;

    private ComposeStack compose;
    /** The 2xx of the sequential requests of the scaling scenario, for its exact total. */
    private long sequentialOk;

    @Override
    Stack startStack() {
        return compose = ComposeStack.up(DocCommands.UP, Map.of());
    }

    @Override
    String diagnosis() {
        return compose == null ? "" : compose.diagnosis();
    }

    @Test
    @Order(0)
    void upStartsRedisThreeReplicasAndNginxAllHealthy() {
        String ok = "running/healthy";
        var containers = compose.ps(true);
        var byService = containers.stream().collect(Collectors.groupingBy(ComposeStack.Container::service,
                Collectors.mapping(c -> c.state() + "/" + c.health(), Collectors.toList())));
        assertEquals(Map.of("nginx", List.of(ok), "redis", List.of(ok), "web", List.of(ok, ok, ok)), byService,
                "compose ps: " + containers);
    }

    @Test
    @Order(6)
    void scaledToFiveEveryReplicaServesThenBackToThreeUnderLoad() {
        String nginxBefore = nginxIdentity();
        long totalBefore = compose.redisTotal();
        compose.docker(ComposeStack.COMMAND_TIMEOUT, DocCommands.SCALE_TO_5);
        Set<String> five = new TreeSet<>(compose.replicas());
        assertEquals(SCALED, five.size(), "web containers after --scale web=5: " + five);
        // Round robin over 5 peers: 10 sequential requests hit each twice once nginx knows all 5.
        awaitOrExplain("all 5 replicas in nginx's rotation (10 sequential GET /, 2 each)", RESOLVE_DEADLINE,
                () -> sequentialRound(five, 2));
        assertEquals(nginxBefore, nginxIdentity(), "scaling touched nginx (recreated or restarted)");

        // The replicas' addresses (ip:8080, one per network), before two go away: nginx's log names upstreams so.
        Map<String, List<String>> addresses = five.stream().collect(Collectors.toMap(id -> id,
                id -> compose.inspect(id).at("/NetworkSettings/Networks").valueStream()
                        .map(n -> n.path("IPAddress").asText() + ":8080").toList()));
        Instant logsFrom = Instant.now().minusSeconds(1);
        Set<String> three = new TreeSet<>();
        Run run = scenario().run("[3 scale] 5->3 under load",
                () -> compose.docker(ComposeStack.COMMAND_TIMEOUT, DocCommands.SCALE_TO_3), load -> {
                    long from = System.nanoTime();
                    three.addAll(compose.replicas());
                    assertEquals(REPLICAS, three.size(), "web containers after --scale web=3: " + three);
                    assertTrue(five.containsAll(three), "scaling down removes replicas, it starts none: " + three + " of " + five);
                    // Past a re-resolve (valid=1s) and a fail_timeout (5s), with margin (10 s): nginx has let go
                    // of the removed replicas, and every remaining one keeps getting traffic.
                    awaitOrExplain("the load spread over the 3 remaining replicas", RESOLVE_DEADLINE,
                            () -> System.nanoTime() - from > Duration.ofSeconds(10).toNanos()
                                    && three.stream().allMatch(r -> load.count(s -> s.ok() && r.equals(s.servedBy())
                                            && s.startNanos() > from) >= 20));
                });
        Result result = run.result();
        Set<String> servedAfter = result.samples().stream().filter(s -> s.ok() && s.startNanos() > run.struckAt())
                .map(Sample::servedBy).collect(Collectors.toSet());
        // Nothing else is running now: sequential requests show nginx's rotation itself.
        awaitOrExplain("nginx's rotation over exactly the 3 remaining replicas (9 sequential GET /)", RESOLVE_DEADLINE,
                () -> sequentialRound(three, 3));
        long counted = compose.redisTotal() - totalBefore;

        assertOnlyNoLiveUpstream502s(result, five.stream().filter(id -> !three.contains(id))
                .flatMap(id -> addresses.get(id).stream()).collect(Collectors.toSet()), logsFrom);
        assertEquals(three, servedAfter, "replicas that served after `--scale web=3` returned");
        assertEquals(sequentialOk + result.ok(), counted, "Redis total growth vs 2xx seen (sequential and under load)");
        assertEquals(0, result.duplicateCounts(), "2xx with a number another 2xx had");
        assertEquals(nginxBefore, nginxIdentity(), "scaling touched nginx (recreated or restarted)");
    }

    /** A JVM that crashes (SIGSEGV, which HotSpot aborts on) is restarted by `restart: unless-stopped`. */
    @Test
    @Order(7)
    void aReplicaThatCrashesUnderLoadIsRestartedByItsRestartPolicyAndServesAgain() {
        String victim = compose.replicas().getFirst();
        String restartsBefore = compose.inspect(victim).path("RestartCount").asText();
        scenario().run("4b crash (SIGSEGV) " + victim, () -> compose.cli.run(ComposeStack.COMMAND_TIMEOUT, "exec", victim,
                "sh", "-c", "kill -SEGV 1").ok("kill -SEGV 1 in " + victim), load -> {
                    awaitOrExplain(victim + " restarted by Docker", ComposeStack.HEALTHY_DEADLINE,
                            () -> !compose.inspect(victim).path("RestartCount").asText().equals(restartsBefore));
                    compose.awaitHealthy(victim);
                    awaitServesAgain(load, victim, System.nanoTime());
                }).assertLossless();
    }

    /** README: `docker compose down` removes containers and networks but keeps Redis's data; `-v` drops it. */
    @Test
    @Order(9)
    void downRemovesContainersAndNetworksAndDownWithVolumesDropsTheCount() {
        var cli = compose.cli;
        String label = "label=com.docker.compose.project=" + compose.project;
        cli.docker(ComposeStack.COMMAND_TIMEOUT, DocCommands.DOWN).ok(DocCommands.DOWN);
        assertEquals(List.of(), compose.ps(true), "containers after " + DocCommands.DOWN);
        assertEquals("", cli.run(ComposeStack.COMMAND_TIMEOUT, "network", "ls", "--filter", label, "--format", "json")
                .ok("docker network ls").output().strip(), "networks after " + DocCommands.DOWN);
        String volume = compose.project + "_redis-data";
        cli.run(ComposeStack.COMMAND_TIMEOUT, "volume", "inspect", volume).ok("the volume " + volume + " after compose down");
        cli.docker(ComposeStack.COMMAND_TIMEOUT, DocCommands.DOWN_VOLUMES).ok(DocCommands.DOWN_VOLUMES);
        assertTrue(cli.run(ComposeStack.COMMAND_TIMEOUT, "volume", "inspect", volume).status() != 0, volume + " after down -v");
    }

    /**
     * The one failure scaling down can give, and nothing else: a 502 nginx logged as "no live upstreams"
     * after attempts on removed replicas only. A replica being stopped refuses connections while Docker's
     * DNS still lists it; an attempt that straddles nginx's re-resolve (valid=1s) changes the peer set under
     * the request, and round robin then picks no other peer for it (ngx_http_upstream_round_robin.c:
     * {@code rrp->config != *peers->config}). Such a request reached no replica: the exact total holds.
     */
    private void assertOnlyNoLiveUpstream502s(Result result, Set<String> removedAddresses, Instant logsFrom) {
        var other = result.failures().stream().filter(s -> s.status() != 502).limit(20).map(Sample::toString).toList();
        assertEquals(List.of(), other, "scale-down: failures other than 502 (" + result.failuresByStatus() + ")");
        result.assertNothingResent("scale-down");
        List<AccessLine> logged = nginxAccessLog(logsFrom);
        List<AccessLine> failedAtNginx = logged.stream().filter(l -> l.status() / 100 != 2).toList();
        assertTrue(logged.size() >= result.samples().size(), "nginx's access log: " + logged.size() + " lines parsed for "
                + result.samples().size() + " requests of the load");
        for (AccessLine line : failedAtNginx) {
            List<String> tried = line.upstreams().subList(0, line.upstreams().size() - 1);
            assertTrue(line.status() == 502 && line.upstreams().getLast().equals("web") && !tried.isEmpty()
                    && removedAddresses.containsAll(tried), "scale-down: a failure other than nginx's \"no live upstreams\""
                    + " after attempts on removed replicas only (" + removedAddresses + "): " + line);
        }
        assertEquals(result.failures().size(), failedAtNginx.size(),
                "scale-down: failures the load saw vs failures nginx logged " + failedAtNginx);
    }

    /** One line of nginx's access log (proxy.conf's log_format vc_upstream): its status, the upstreams tried. */
    record AccessLine(int status, List<String> upstreams, String line) {}

    private static final Pattern ACCESS_LINE = Pattern.compile("\"[^\"]*\" (\\d{3}) \\d+ rid=\\S+ upstream=(.*?) ustatus=.*");

    /** nginx's access log lines since {@code from}. */
    private List<AccessLine> nginxAccessLog(Instant from) {
        return compose.cli.run(ComposeStack.COMMAND_TIMEOUT, "compose", "logs", "--no-color", "--no-log-prefix", "--since",
                from.truncatedTo(ChronoUnit.SECONDS).toString(), "nginx").ok("docker compose logs nginx").output()
                .lines().map(ACCESS_LINE::matcher).filter(Matcher::find).map(m -> new AccessLine(
                        Integer.parseInt(m.group(1)), List.of(m.group(2).strip().split(", | : ")), m.group()))
                .toList();
    }

    private String nginxIdentity() {
        return compose.incarnation(compose.containers("nginx").getFirst().id());
    }

    /** Sequential GET /, each a 2xx (counted for the exact total): does each of these replicas serve n of them? */
    private boolean sequentialRound(Set<String> replicas, int n) throws IOException {
        Map<String, Integer> served = new HashMap<>();
        for (int i = 0; i < n * replicas.size(); i++) {
            var r = Http.get(compose.uri("/"));
            assertEquals(2, r.statusCode() / 100, "a sequential GET / while scaling: " + r.statusCode() + " " + r.body());
            sequentialOk++;
            served.merge(PageViews.header(r, "X-Served-By"), 1, Integer::sum);
        }
        return served.equals(replicas.stream().collect(Collectors.toMap(r -> r, r -> n)));
    }
}

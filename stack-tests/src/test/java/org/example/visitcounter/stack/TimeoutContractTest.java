package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.MatchResult;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.example.visitcounter.Settings;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Test;

/**
 * The timeout contract of docs/behaviour.md ("Timeouts"), read from the shipped files: the
 * service's defaults, nginx's proxy and upstream settings, the compose files' grace periods and
 * healthchecks. Each pair must keep its order, whichever file is edited.
 */
class TimeoutContractTest {
    private static final Path ROOT = Project.root();
    private final Settings defaults = Settings.fromEnv(Map.of("REPLICA_NAME", "contract"));

    @Test
    void aRedisCallFitsInTheRequestDeadlineAndThatInNginxsReadTimeout() throws IOException {
        assertLess("REDIS_TIMEOUT_MS", defaults.redis().timeout(), "REQUEST_DEADLINE_MS", defaults.retry().deadline());
        // The replica's 503 + Retry-After after its deadline must reach the client, not nginx's 504.
        assertLess("REQUEST_DEADLINE_MS", defaults.retry().deadline(), "proxy_read_timeout", proxy("proxy_read_timeout"));
    }

    @Test
    void failoverHasTimeForASlowReplicaAndTheRestRefusing() throws IOException {
        int tries = Integer.parseInt(directive("nginx/proxy.conf", "proxy_next_upstream_tries"));
        Duration worst = proxy("proxy_read_timeout").plus(proxy("proxy_connect_timeout").multipliedBy(tries - 1));
        assertFalse(proxy("proxy_next_upstream_timeout").compareTo(worst) < 0, "proxy_next_upstream_timeout "
                + proxy("proxy_next_upstream_timeout") + " must allow one read timeout and the other attempts' connect"
                + " timeouts: " + worst);
    }

    @Test
    void theDedupeWindowOutlastsEveryRepeatOfARequest() throws IOException {
        // nginx may send the request to another replica until proxy_next_upstream_timeout after its
        // first attempt; that replica retries until its deadline, and its last Redis call may run
        // for one more timeout. The margin covers what no setting bounds: a request queued in the
        // replica before its deadline starts, a GC pause (docs/redis-memory.md).
        Duration margin = Duration.ofSeconds(5);
        Duration lastRepeat = proxy("proxy_next_upstream_timeout").plus(defaults.retry().deadline())
                .plus(defaults.redis().timeout());
        assertFalse(defaults.dedupeWindow().compareTo(lastRepeat.plus(margin)) < 0, "DEDUPE_WINDOW_SECONDS ("
                + defaults.dedupeWindow() + ") must be at least proxy_next_upstream_timeout + REQUEST_DEADLINE_MS"
                + " + REDIS_TIMEOUT_MS (" + lastRepeat + ") + " + margin);
        // And no longer than that, rounded up to the second: every extra second is memory (one
        // marker per request).
        assertTrue(defaults.dedupeWindow().minusSeconds(1).compareTo(lastRepeat.plus(margin)) < 0,
                "DEDUPE_WINDOW_SECONDS (" + defaults.dedupeWindow() + ") is longer than the timeouts need");
    }

    @Test
    void nginxClosesAnIdleUpstreamConnectionBeforeJettyDoes() throws IOException {
        // A connection the replica closed first can fail the next request on it and get a healthy
        // replica marked failed. The app keeps Jetty's default idle timeout.
        assertFalse(Files.readString(ROOT.resolve("web-app/src/main/java/org/example/visitcounter/VisitCounterApp.java"))
                .contains("IdleTimeout"), "VisitCounterApp sets an idle timeout: compare with that instead");
        Duration jetty = Duration.ofMillis(new ServerConnector(new Server()).getIdleTimeout());
        assertLess("keepalive_timeout (upstream)", seconds(directive("nginx/upstream-shared.conf", "keepalive_timeout")),
                "Jetty's idle timeout", jetty);
    }

    @Test
    void dockerWaitsLongerThanAGracefulStopTakes() throws IOException {
        Duration prod = seconds(serviceKey("prod.compose.yaml", "web", "stop_grace_period"));
        assertLess("SHUTDOWN_GRACE_MS", defaults.shutdownGrace(), "stop_grace_period (prod web)", prod);
        // compose.yaml sets none: Docker's default of 10 s.
        assertEquals(null, serviceKey("compose.yaml", "web", "stop_grace_period"));
        assertLess("SHUTDOWN_GRACE_MS", defaults.shutdownGrace(), "Docker's default stop timeout", Duration.ofSeconds(10));
    }

    @Test
    void everyHealthcheckRequestGivesUpBeforeItsCheckDoes() throws IOException {
        for (String file : List.of("web-app/Dockerfile", "nginx/Dockerfile")) {
            Matcher m = Pattern.compile("HEALTHCHECK [^\\n]*--timeout=(\\d+)s[^\\n]*\\\\\\n\\s*CMD wget[^\\n]* -T (\\d+) ")
                    .matcher(Files.readString(ROOT.resolve(file)));
            assertTrue(m.find(), file + " has a HEALTHCHECK with wget -T");
            assertLess(file + ": wget -T", seconds(m.group(2) + "s"), "the HEALTHCHECK's timeout",
                    seconds(m.group(1) + "s"));
        }
        // compose.yaml's nginx and web checks (prod.compose.yaml changes only the web check's URL).
        Matcher m = Pattern.compile("test: \\[\"CMD\", \"wget\", \"-q\", \"-T\", \"(\\d+)\"[^\\n]*\\n\\s*(?:interval: \\S+\\n\\s*)?timeout: (\\d+)s")
                .matcher(Files.readString(ROOT.resolve("compose.yaml")));
        List<MatchResult> checks = m.results().toList();
        assertEquals(2, checks.size(), "compose.yaml's wget healthchecks (nginx, web) with their timeouts");
        for (MatchResult check : checks) {
            assertLess("compose.yaml: wget -T", seconds(check.group(1) + "s"), "the healthcheck's timeout",
                    seconds(check.group(2) + "s"));
        }
        assertFalse(Pattern.compile("(?m)^\\s+timeout:").matcher(Files.readString(ROOT.resolve("prod.compose.yaml"))).find(),
                "prod.compose.yaml sets a healthcheck timeout: check it against its wget -T here");
    }

    private static void assertLess(String a, Duration first, String b, Duration second) {
        assertTrue(first.compareTo(second) < 0, a + " (" + first + ") must be shorter than " + b + " (" + second + ")");
    }

    private static Duration proxy(String name) throws IOException {
        return seconds(directive("nginx/proxy.conf", name));
    }

    private static String directive(String file, String name) throws IOException {
        List<String> values = Pattern.compile("(?m)^\\s*" + name + "\\s+([^;\\s]+);")
                .matcher(Files.readString(ROOT.resolve(file))).results().map(m -> m.group(1)).toList();
        assertEquals(1, values.size(), file + " must set " + name + " once: " + values);
        return values.get(0);
    }

    /** A top-level key of one service in a compose file (two-space indentation, as ours are written), or null. */
    private static String serviceKey(String file, String service, String key) throws IOException {
        Matcher block = Pattern.compile("(?ms)^  " + service + ":\\n(.*?)(?=^  \\S|^\\S|\\z)")
                .matcher(Files.readString(ROOT.resolve(file)));
        assertTrue(block.find(), file + " has no service " + service);
        Matcher m = Pattern.compile("(?m)^    " + key + ":\\s*(\\S+)").matcher(block.group(1));
        return m.find() ? m.group(1) : null;
    }

    /** {@code 5s} as a Duration; fails on anything else (null: the key is not set). */
    private static Duration seconds(String value) {
        assertTrue(String.valueOf(value).matches("\\d+s"), "expected a duration in seconds, e.g. 5s: " + value);
        return Duration.parse("PT" + value);
    }
}

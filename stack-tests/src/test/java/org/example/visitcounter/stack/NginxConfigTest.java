package org.example.visitcounter.stack;

import static java.util.stream.Collectors.groupingBy;
import static java.util.stream.Collectors.toSet;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The shipped nginx configuration: {@code nginx -t} in the wrapper that scripts/loopback-nginx.sh
 * generates (the very one the loopback stack runs), the loopback upstreams kept in step with the
 * image's template, and the production rate limit switch.
 */
class NginxConfigTest {
    private static final Path ROOT = Project.root();

    /** scripts/local-stack.sh --check-nginx: generate the configuration and run nginx -t on it. */
    private static Processes.Outcome checkNginx(Path stateDir, Map<String, String> settings) {
        var env = new HashMap<>(settings);
        env.put("STATE_DIR", stateDir.toString());
        return Processes.run(Duration.ofSeconds(60), List.of("bash", "scripts/local-stack.sh", "--check-nginx"),
                LocalStack.scriptEnvironment(env));
    }

    @ParameterizedTest(name = "NGINX_BALANCE={0} NGINX_RATE_LIMIT={1}")
    @CsvSource({"round_robin, off", "round_robin, on", "least_conn, off", "ip_hash, on"})
    void theShippedProxyConfPassesNginxTest(String balance, String rateLimit, @TempDir Path state) throws Exception {
        String output = checkNginx(state, Map.of("NGINX_BALANCE", balance, "NGINX_RATE_LIMIT", rateLimit,
                "HTTP_PORT", "18080", "WEB_BASE_PORT", "19001")).ok("local-stack.sh --check-nginx").output();
        assertTrue(output.contains("test is successful"), output);

        String nginxConf = Files.readString(state.resolve("nginx/nginx.conf"));
        assertTrue(nginxConf.contains("include \"" + ROOT.resolve("nginx/proxy.conf") + "\";"),
                "the shipped proxy.conf is included as it is, not copied:\n" + nginxConf);
        assertEquals("listen 127.0.0.1:18080;", Files.readString(state.resolve("nginx/listen.conf")).trim(),
                "loopback only, on HTTP_PORT");
        String upstream = Files.readString(state.resolve("nginx/upstream.conf"));
        assertTrue(upstream.contains("default \"" + rateLimit + "\";"), upstream);
        assertTrue(upstream.contains("nginx/balance/" + balance + ".conf\";"), upstream);
        assertTrue(upstream.contains("server 127.0.0.1:19003 "), upstream);
    }

    @Test
    void anInvalidSettingIsRefusedBeforeNginxRuns(@TempDir Path state) throws Exception {
        var result = checkNginx(state, Map.of("NGINX_BALANCE", "random"));
        assertEquals(1, result.status(), result.output());
        assertTrue(result.output().contains("round_robin"), "lists the valid choices: " + result.output());
        assertEquals(1, checkNginx(state, Map.of("NGINX_RATE_LIMIT", "yes")).status());
    }

    @Test
    void theLoopbackUpstreamsAreTheImagesWithAServerPerReplica(@TempDir Path state) throws Exception {
        assertEquals(0, checkNginx(state, Map.of()).status());
        // The image's upstreams as its entrypoint renders them (peers.envsh sourced, then envsubst),
        // with their includes where nginx/Dockerfile copies them (/etc/nginx/X is nginx/X); on
        // loopback, one server a replica in its place.
        String rendered = Processes.run(List.of("bash", "-c", "source nginx/peers.envsh && NGINX_BALANCE=round_robin"
                + " NGINX_RATE_LIMIT=off envsubst < nginx/upstream.conf.template")).ok("rendering the template").stdout()
                .replace("/etc/nginx/", ROOT.resolve("nginx") + "/");
        String loopback = Files.readString(state.resolve("nginx/upstream.conf"));
        for (String name : List.of("web", "web_other")) {
            List<String> expected = upstream(name, rendered).stream()
                    .flatMap(d -> !d.startsWith("server web:8080 resolve ") ? Stream.of(d) : Stream.of(9001, 9002, 9003)
                            .map(port -> d.replace("web:8080 resolve", "127.0.0.1:" + port))).toList();
            assertEquals(expected, upstream(name, loopback), "upstream " + name);
            assertTrue(expected.contains("server 127.0.0.1:9001 max_fails=1 fail_timeout=5s"),
                    "peers.envsh's parameters: " + expected);
            assertTrue(expected.contains("include " + ROOT.resolve("nginx/upstream-shared.conf")), expected.toString());
        }
        // What both include: the zone and the connection cache (its timeout: TimeoutContractTest).
        assertEquals(List.of("zone", "keepalive", "keepalive_timeout", "keepalive_requests"),
                directives(Files.readString(ROOT.resolve("nginx/upstream-shared.conf"))).stream()
                        .map(d -> d.split(" ")[0]).toList());
    }

    @Test
    void theImageTemplateUsesOnlyDocumentedVariablesAndExistingBalanceFiles() throws Exception {
        String template = Files.readString(ROOT.resolve("nginx/upstream.conf.template"));
        assertEquals(Set.of("NGINX_BALANCE", "NGINX_PEER_PARAMS", "NGINX_RATE_LIMIT"), Pattern.compile(
                "\\$\\{([A-Za-z_][A-Za-z0-9_]*)}").matcher(template).results().map(m -> m.group(1)).collect(toSet()));
        assertTrue(template.contains("include /etc/nginx/balance/${NGINX_BALANCE}.conf;"), template);
        assertTrue(template.contains("resolver 127.0.0.11"), template);

        assertEquals(Set.of("ip_hash.conf", "least_conn.conf", "round_robin.conf"),
                Set.of(ROOT.resolve("nginx/balance").toFile().list()));
        // proxy.conf takes its port from listen.conf (image: 8080; loopback: HTTP_PORT).
        String proxy = Files.readString(ROOT.resolve("nginx/proxy.conf"));
        assertFalse(Pattern.compile("(?m)^\\s*listen\\s").matcher(proxy).find(), "no listen of its own");
        assertTrue(proxy.contains("include listen.conf;"));
    }

    @Test
    void theRateLimitAnswers429PerClientWhenSwitchedOn() throws Exception {
        try (var stack = LocalStack.start(Map.of("REPLICAS", "1", "NGINX_RATE_LIMIT", "on"))) {
            // 20 requests/s with bursts of 40: 100 requests sent at once exceed that on a machine of
            // any speed (one after the other, a loaded machine may stay under 20 a second).
            Callable<HttpResponse<String>> visit = () -> Http.get(stack.uri("/api/visits"));
            var responses = new ArrayList<HttpResponse<String>>();
            try (var senders = Executors.newVirtualThreadPerTaskExecutor()) {
                for (var sent : senders.invokeAll(Collections.nCopies(100, visit))) {
                    responses.add(sent.get());
                }
            }
            var byStatus = responses.stream().collect(groupingBy(HttpResponse::statusCode));
            assertEquals(Set.of(200, 429), byStatus.keySet(), "only the burst's 200s and the limit's 429s");
            assertTrue(byStatus.get(200).size() >= 40, "the burst passes: " + byStatus.get(200).size());
            assertTrue(byStatus.get(429).size() >= 5, "then the limit answers 429: " + byStatus.get(429).size());
            for (var limited : byStatus.get(429)) {
                assertTrue(limited.headers().firstValue("X-Served-By").isEmpty(), "answered by nginx");
                assertEquals("nosniff", limited.headers().firstValue("X-Content-Type-Options").orElse(""));
            }
            // nginx's own health endpoint is never limited: the container healthcheck must not fail.
            for (int i = 0; i < 10; i++) {
                assertEquals(200, Http.status(stack.uri("/nginx-health")));
            }
            String errors = Files.readString(stack.logs().resolve("nginx-error.log"));
            assertTrue(errors.contains("limiting requests"), "nginx logs the limited requests");
        }
    }

    private static List<String> upstream(String name, String config) {
        Matcher block = Pattern.compile("upstream\\s+" + name + "\\s*\\{([^}]*)}").matcher(config.replaceAll("#.*", ""));
        assertTrue(block.find(), config);
        return directives(block.group(1));
    }

    /** The directives as nginx reads them: comments dropped, blanks folded, quotes removed. */
    private static List<String> directives(String config) {
        return Stream.of(config.replaceAll("#[^\\n]*", "").replace("\"", "").split(";"))
                .map(d -> d.strip().replaceAll("\\s+", " ")).filter(d -> !d.isEmpty()).toList();
    }
}

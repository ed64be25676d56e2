package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The merged model Compose actually runs: {@code docker compose -f compose.yaml [-f overlay] config}.
 * That needs only the Compose CLI plugin, no Docker engine; where the plugin is absent the Compose
 * tests skip. The Swarm check needs only the docker CLI ({@code docker stack config} also works
 * without an engine).
 *
 * <p>Runs are isolated from the caller's environment: an empty --env-file (so no .env in the
 * repository is read) and none of the variables the files interpolate. The prod overlay's secret
 * file is replaced by a temporary one through an extra overlay; nothing is written in the
 * repository.
 */
class ComposeConfigTest {

    private static final long TIMEOUT_SECONDS = 120;
    /** The merge tags !reset and !override need Compose 2.24 or newer. */
    private static final int[] MIN_COMPOSE = {2, 24, 0};
    private static final Set<String> INTERPOLATED = Set.of("HTTP_PORT", "REGISTRY", "TAG", "REDIS_APPENDFSYNC",
            "REDIS_DEV_PORT", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_ENV_FILES",
            "COMPOSE_PATH_SEPARATOR");

    private final ObjectMapper json = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void baseFile() throws Exception {
        JsonNode config = composeConfig(Map.of(), "compose.yaml");

        assertEquals("visit-counter", config.path("name").asText());
        JsonNode services = config.path("services");
        assertEquals(Set.of("nginx", "redis", "web"), fieldNames(services));

        JsonNode web = services.path("web");
        assertEquals(3, web.path("deploy").path("replicas").asInt());
        assertEquals("service_healthy", web.path("depends_on").path("redis").path("condition").asText());
        assertEquals("redis://redis:6379", web.path("environment").path("REDIS_URL").asText());
        assertTrue(web.path("healthcheck").path("test").toString().contains("/readyz"), web.path("healthcheck").toString());
        assertEquals(Set.of("front", "back"), fieldNames(web.path("networks")));
        assertTrue(web.path("ports").isMissingNode(), "web publishes nothing: " + web.path("ports"));

        JsonNode redis = services.path("redis");
        assertEquals(Set.of("back"), fieldNames(redis.path("networks")));
        assertTrue(redis.path("ports").isMissingNode(), "redis publishes nothing in the base file");

        JsonNode nginx = services.path("nginx");
        assertEquals("service_healthy", nginx.path("depends_on").path("web").path("condition").asText());
        assertEquals(Set.of("front"), fieldNames(nginx.path("networks")));
        JsonNode ports = nginx.path("ports");
        assertEquals(1, ports.size(), ports.toString());
        assertEquals("127.0.0.1", ports.get(0).path("host_ip").asText());
        assertEquals("8080", ports.get(0).path("published").asText());
        assertEquals(8080, ports.get(0).path("target").asInt());
    }

    @Test
    void devOverlay() throws Exception {
        JsonNode config = composeConfig(Map.of(), "compose.yaml", "dev.compose.yaml");
        JsonNode web = config.path("services").path("web");

        assertEquals("dev", web.path("build").path("target").asText());
        assertTrue(web.path("build").path("dockerfile").asText().endsWith("web-app/Dockerfile"),
                "the overlay keeps the base build context and Dockerfile: " + web.path("build"));
        assertEquals("debug", web.path("environment").path("LOG_LEVEL").asText());
        assertEquals("plain", web.path("environment").path("LOG_FORMAT").asText());
        assertEquals("redis://redis:6379", web.path("environment").path("REDIS_URL").asText(), "base env is kept");
        assertEquals("no", web.path("restart").asText());
        assertEquals("127.0.0.1", web.path("ports").get(0).path("host_ip").asText(), "JDWP on loopback only");
        assertEquals(5005, web.path("ports").get(0).path("target").asInt());

        List<JsonNode> watch = list(web.path("develop").path("watch"));
        assertFalse(watch.isEmpty(), "web has watch rules");
        // Manifests first: every rebuild rule comes before the first sync rule.
        int lastRebuild = -1;
        int firstSync = Integer.MAX_VALUE;
        for (int i = 0; i < watch.size(); i++) {
            String action = watch.get(i).path("action").asText();
            if (action.equals("rebuild")) {
                lastRebuild = i;
            } else if (action.startsWith("sync")) {
                firstSync = Math.min(firstSync, i);
            }
        }
        assertTrue(lastRebuild >= 0 && lastRebuild < firstSync, "rebuild rules precede sync rules: " + watch);
        assertTrue(hasRule(watch, "rebuild", "pom.xml", null), "rebuild on the root pom: " + watch);
        assertTrue(hasRule(watch, "rebuild", "web-app/pom.xml", null), "rebuild on web-app/pom.xml: " + watch);
        assertTrue(hasRule(watch, "rebuild", "web-app/Dockerfile", null), "rebuild on the Dockerfile: " + watch);
        assertTrue(hasRule(watch, "sync", "web-app/src/main/resources/public", "/app/static"), "assets: " + watch);
        assertTrue(hasRule(watch, "sync+restart", "web-app/src/main/java", "/app/src/main/java"), "java: " + watch);

        JsonNode nginxWatch = config.path("services").path("nginx").path("develop").path("watch");
        assertTrue(hasRule(list(nginxWatch), "sync+restart", "nginx/proxy.conf", "/etc/nginx/conf.d/proxy.conf"),
                "nginx config is synced and nginx restarted: " + nginxWatch);

        JsonNode redisPorts = config.path("services").path("redis").path("ports");
        assertEquals("127.0.0.1", redisPorts.get(0).path("host_ip").asText(), "redis on loopback only");
        assertEquals("6379", redisPorts.get(0).path("published").asText());
    }

    @Test
    void prodOverlay() throws Exception {
        JsonNode config = composeConfig(Map.of(), "compose.yaml", "prod.compose.yaml", secretOverlay());
        JsonNode services = config.path("services");

        JsonNode nginx = services.path("nginx");
        JsonNode ports = nginx.path("ports");
        assertEquals(1, ports.size(), "!override replaces the base port instead of adding to it: " + ports);
        assertEquals("80", ports.get(0).path("published").asText());
        assertEquals("0.0.0.0", ports.get(0).path("host_ip").asText());
        assertEquals(8080, ports.get(0).path("target").asInt());
        assertEquals("on", nginx.path("environment").path("NGINX_RATE_LIMIT").asText());
        assertEquals("localhost:5000/visit-counter-nginx:latest", nginx.path("image").asText());

        JsonNode web = services.path("web");
        assertEquals("localhost:5000/visit-counter-web:latest", web.path("image").asText());
        assertFalse(web.path("build").isMissingNode(), "the base build section is kept (build + push by name)");
        assertEquals(3, web.path("deploy").path("replicas").asInt());
        assertEquals("on-failure", web.path("deploy").path("restart_policy").path("condition").asText());
        assertFalse(web.path("deploy").path("resources").path("limits").path("memory").isMissingNode());
        assertFalse(web.path("deploy").path("resources").path("reservations").path("memory").isMissingNode());
        assertEquals("json", web.path("environment").path("LOG_FORMAT").asText());
        assertEquals("/run/secrets/redis_password", web.path("environment").path("REDIS_PASSWORD_FILE").asText());
        assertEquals("redis://redis:6379", web.path("environment").path("REDIS_URL").asText(), "base env is kept");
        assertTrue(web.path("read_only").asBoolean());
        assertEquals("[\"ALL\"]", web.path("cap_drop").toString());
        assertTrue(web.path("security_opt").toString().contains("no-new-privileges:true"));
        assertEquals("SIGTERM", web.path("stop_signal").asText());
        assertTrue(web.path("healthcheck").path("test").toString().contains("/healthz"),
                "prod probes liveness: " + web.path("healthcheck"));
        assertEquals("json-file", web.path("logging").path("driver").asText());

        JsonNode redis = services.path("redis");
        List<String> command = strings(redis.path("command"));
        assertTrue(command.containsAll(List.of("--appendonly", "yes", "--appendfsync", "everysec")), command.toString());
        assertEquals("-", command.get(command.size() - 1), "`-` (config from stdin) must stay last: " + command);
        assertFalse(redis.toString().contains("--requirepass"), "no password on the command line");
        assertEquals("redis_password", redis.path("secrets").get(0).path("source").asText());
        assertEquals("redis-data", redis.path("volumes").get(0).path("source").asText());
        assertTrue(redis.path("ports").isMissingNode(), "redis is never published in prod");

        assertTrue(config.path("networks").path("back").path("internal").asBoolean(), "back network is internal");
        assertFalse(config.path("volumes").path("redis-data").isMissingNode());
    }

    @Test
    void prodSettingsComeFromTheEnvironment() throws Exception {
        JsonNode config = composeConfig(
                Map.of("REDIS_APPENDFSYNC", "always", "HTTP_PORT", "8088", "REGISTRY", "registry.example:5000",
                        "TAG", "1.2.3"),
                "compose.yaml", "prod.compose.yaml", secretOverlay());
        JsonNode services = config.path("services");
        assertTrue(strings(services.path("redis").path("command")).contains("always"));
        assertEquals("8088", services.path("nginx").path("ports").get(0).path("published").asText());
        assertEquals("registry.example:5000/visit-counter-web:1.2.3", services.path("web").path("image").asText());
    }

    @Test
    void prodOverlayHoldsOnlyKeysThatSwarmAccepts() throws Exception {
        // `docker stack deploy` validates each -c file against the v3 schema. The base file cannot
        // pass (top-level name, long-form depends_on), but the prod overlay itself must.
        Result version;
        try {
            version = run(List.of("docker", "--version"), Map.of());
        } catch (IOException e) {
            version = new Result(127, "", e.toString());
        }
        assumeTrue(version.exit() == 0, "docker CLI not available: " + version.output().strip());
        Result result = run(List.of("docker", "stack", "config", "-c", "prod.compose.yaml"), Map.of());
        assertEquals(0, result.exit(), "docker stack config rejected prod.compose.yaml:\n" + result.output());
        assertTrue(result.stdout().contains("endpoint_mode: dnsrr"), result.output());
    }

    // ---------------------------------------------------------------------------------------------

    private JsonNode composeConfig(Map<String, String> env, String... files) throws Exception {
        assumeComposeAvailable();
        Path emptyEnv = Files.createFile(tmp.resolve("empty-" + System.nanoTime() + ".env"));
        List<String> command = new ArrayList<>(List.of("docker", "compose", "--env-file", emptyEnv.toString()));
        for (String file : files) {
            command.add("-f");
            command.add(file);
        }
        command.addAll(List.of("config", "--format", "json"));
        Result result = run(command, env);
        if (result.exit() != 0) {
            fail(String.join(" ", command) + " failed (exit " + result.exit() + "):\n" + result.output());
        }
        return json.readTree(result.stdout());
    }

    /** An extra overlay pointing the prod secret at a temporary file (config may check it exists). */
    private String secretOverlay() throws IOException {
        Path secret = tmp.resolve("redis_password.txt");
        if (!Files.exists(secret)) {
            Files.writeString(secret, "config-test-only\n");
        }
        Path overlay = tmp.resolve("secret.override.yaml");
        Files.writeString(overlay, "secrets:\n  redis_password:\n    file: " + secret.toAbsolutePath() + "\n");
        return overlay.toAbsolutePath().toString();
    }

    private void assumeComposeAvailable() throws Exception {
        Result version;
        try {
            version = run(List.of("docker", "compose", "version", "--short"), Map.of());
        } catch (IOException e) {
            version = new Result(127, "", e.toString());
        }
        assumeTrue(version.exit() == 0, "docker compose (the Compose v2 CLI plugin) is not available: "
                + version.output().strip());
        Matcher m = Pattern.compile("(\\d+)\\.(\\d+)\\.(\\d+)").matcher(version.stdout());
        assertTrue(m.find(), "cannot read the Compose version from: " + version.stdout());
        int[] have = {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3))};
        for (int i = 0; i < 3; i++) {
            if (have[i] != MIN_COMPOSE[i]) {
                assertTrue(have[i] > MIN_COMPOSE[i], "the compose files need Docker Compose >= 2.24 (!reset,"
                        + " !override); found " + version.stdout().strip());
                break;
            }
        }
    }

    /** A rule with this action on exactly this repository path (and target, unless null). */
    private static boolean hasRule(List<JsonNode> watch, String action, String repoPath, String target) {
        Path root = ComposeLintTest.projectRoot();
        Set<Path> expected = new HashSet<>(List.of(root.resolve(repoPath).normalize()));
        try {
            expected.add(root.toRealPath().resolve(repoPath).normalize()); // in case the root is a symlink
        } catch (IOException e) {
            // keep the plain path
        }
        return watch.stream().anyMatch(rule -> rule.path("action").asText().equals(action)
                && expected.contains(Path.of(rule.path("path").asText()).normalize())
                && (target == null || rule.path("target").asText().equals(target)));
    }

    private static Set<String> fieldNames(JsonNode node) {
        Set<String> names = new TreeSet<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static List<JsonNode> list(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).collect(Collectors.toList());
    }

    private static List<String> strings(JsonNode array) {
        return list(array).stream().map(JsonNode::asText).collect(Collectors.toList());
    }

    private record Result(int exit, String stdout, String stderr) {
        String output() {
            return stdout + (stderr.isEmpty() ? "" : "\n[stderr]\n" + stderr);
        }
    }

    private Result run(List<String> command, Map<String, String> env) throws IOException, InterruptedException {
        Path out = Files.createTempFile(tmp, "out", ".txt");
        Path err = Files.createTempFile(tmp, "err", ".txt");
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(ComposeLintTest.projectRoot().toFile())
                .redirectOutput(out.toFile())
                .redirectError(err.toFile());
        builder.environment().keySet().removeIf(INTERPOLATED::contains);
        builder.environment().putAll(env);
        Process process = builder.start();
        if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            fail(String.join(" ", command) + " did not finish within " + TIMEOUT_SECONDS + " s");
        }
        return new Result(process.exitValue(), Files.readString(out), Files.readString(err));
    }
}

package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.module.ModuleDescriptor.Version;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Processes.Outcome;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The merged model Compose actually runs: {@code docker compose -f compose.yaml [-f overlay] config}.
 * That needs only the Compose CLI plugin, no Docker engine; where the plugin is absent the Compose
 * tests skip. The Swarm checks also need jq (scripts/swarm-stack.sh) and the docker CLI
 * ({@code docker stack config} works without an engine).
 *
 * <p>Runs are isolated from the caller's environment: an empty --env-file (so no .env in the
 * repository is read) and none of the variables the files interpolate. The prod overlay's secret
 * file is replaced by a temporary one through an extra overlay; nothing is written in the
 * repository.
 */
class ComposeConfigTest {

    /** The merge tags !reset and !override need Compose 2.24 or newer. */
    private static final Version MIN_COMPOSE = Version.parse("2.24.0");
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
        assertTrue(hasRule(watch, "rebuild", "dev-server/src/main", null), "rebuild on the dev server's sources: " + watch);
        assertTrue(hasRule(watch, "sync", "web-app/src/main/resources/public", "/app/static"), "assets: " + watch);
        // Sync only: the dev server reloads the synced sources in its running JVM (sync+restart would
        // restart every replica at once).
        assertTrue(hasRule(watch, "sync", "web-app/src/main/java", "/app/src/main/java"), "java: " + watch);

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
        // Redis reads stdin only for a `-` first or last; first, because entrypoints append arguments.
        assertEquals(List.of("redis-server", "-"), command.subList(0, 2),
                "`-` (config from stdin) must be redis-server's first argument: " + command);
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

    /**
     * scripts/swarm-stack.sh: the stack file for `docker stack deploy`, derived from Compose's own
     * merge of compose.yaml + prod.compose.yaml. The stack loader accepts it, and every setting
     * the script does not rewrite is Compose's, unchanged: nothing of the prod overlay is restated.
     */
    @Test
    void swarmStackFileIsDerivedFromTheProdMerge() throws Exception {
        assumeComposeAvailable();
        Processes.assumeTool("scripts/swarm-stack.sh needs it", "jq", "--version");
        String secret = secretOverlay();
        JsonNode compose = composeConfig(Map.of(), "compose.yaml", "prod.compose.yaml", secret);
        Outcome generated = swarmStack(secret);
        assertEquals(0, generated.status(), "scripts/swarm-stack.sh config failed:\n" + generated.output());
        JsonNode stack = json.readTree(generated.stdout());

        Path file = tmp.resolve("stack.json");
        Files.writeString(file, generated.stdout());
        Outcome accepted = run(List.of("docker", "stack", "config", "-c", file.toString()), Map.of());
        assertEquals(0, accepted.status(), "docker stack config rejected the generated stack file:\n" + accepted.output());

        assertEquals("3.12", stack.path("version").asText(), "the format with healthcheck.start_interval");
        assertTrue(stack.path("name").isMissingNode(), "no top-level name: the stack name is deploy's argument");
        assertEquals(fieldNames(compose.path("services")), fieldNames(stack.path("services")));
        Set<String> rewritten = Set.of("build", "restart", "depends_on", "tmpfs", "ports", "deploy", "volumes");
        for (Map.Entry<String, JsonNode> service : entries(compose.path("services"))) {
            String name = service.getKey();
            JsonNode from = service.getValue();
            JsonNode to = stack.path("services").path(name);
            for (String key : List.of("build", "restart", "depends_on", "tmpfs")) {
                assertTrue(to.path(key).isMissingNode(), name + ": " + key + " is not for Swarm: " + to.path(key));
            }
            for (Map.Entry<String, JsonNode> setting : entries(from)) {
                if (!rewritten.contains(setting.getKey()) && !setting.getValue().isNull()) {
                    assertEquals(setting.getValue(), to.path(setting.getKey()), name + "." + setting.getKey()
                            + " must be Compose's, unchanged");
                }
            }
            assertEquals(withCpusAsText(from.path("deploy")), to.path("deploy"), name + ".deploy: Compose's, CPUs as text");
            for (JsonNode volume : list(from.path("volumes"))) {
                assertTrue(list(to.path("volumes")).contains(volume), name + ": Compose's mount " + volume + " is kept");
            }
            tmpfsBecameMounts(name, from, to, stack.path("volumes"));
        }

        JsonNode ports = stack.path("services").path("nginx").path("ports");
        assertEquals(1, ports.size(), "one port, prod's !override honoured (Swarm would have merged both): " + ports);
        assertEquals(80, ports.get(0).path("published").asInt());
        assertEquals(8080, ports.get(0).path("target").asInt());
        assertEquals("host", ports.get(0).path("mode").asText(), "bound where nginx runs; nginx sees client addresses");
        assertTrue(ports.get(0).path("host_ip").isMissingNode(), ports.toString());

        JsonNode web = stack.path("services").path("web").path("deploy");
        assertEquals("dnsrr", web.path("endpoint_mode").asText());
        assertEquals("start-first", web.path("update_config").path("order").asText());
        assertEquals(3, web.path("replicas").asInt());

        for (String top : List.of("networks", "volumes", "secrets")) {
            for (Map.Entry<String, JsonNode> item : entries(stack.path(top))) {
                assertTrue(item.getValue().path("name").isMissingNode(), top + "." + item.getKey()
                        + " keeps no Compose-made name, so the stack namespace applies: " + item.getValue());
            }
        }
        assertTrue(stack.path("networks").path("back").path("internal").asBoolean(), "back network is internal");
        assertTrue(stack.path("secrets").path("redis_password").path("file").asText().endsWith("redis_password.txt"));
    }

    @Test
    void swarmStackRefusesAPortSwarmCannotBindLikeCompose() throws Exception {
        assumeComposeAvailable();
        Processes.assumeTool("scripts/swarm-stack.sh needs it", "jq", "--version");
        Path loopback = tmp.resolve("loopback.override.yaml");
        Files.writeString(loopback, "services:\n  nginx:\n    ports: !override\n      - \"127.0.0.1:8080:8080\"\n");
        Outcome result = swarmStack(secretOverlay(), loopback.toString());
        assertTrue(result.status() != 0, "a loopback-only port must not silently become public:\n" + result.output());
        assertTrue(result.stderr().contains("Swarm binds all interfaces"), result.output());
    }

    /**
     * Each service-level tmpfs entry is a mount of the stack service: a Swarm tmpfs when it has a
     * size at most, else a tmpfs volume of the local driver with Compose's options verbatim.
     */
    private static void tmpfsBecameMounts(String service, JsonNode from, JsonNode to, JsonNode volumes) {
        for (String entry : strings(from.path("tmpfs"))) {
            String target = entry.split(":", 2)[0];
            String options = entry.contains(":") ? entry.split(":", 2)[1] : "";
            JsonNode mount = list(to.path("volumes")).stream().filter(v -> v.path("target").asText().equals(target))
                    .findFirst().orElseThrow(() -> new AssertionError(service + ": no mount for tmpfs " + entry));
            if (options.isEmpty() || options.matches("size=[^,]+")) {
                assertEquals("tmpfs", mount.path("type").asText(), service + " " + entry + ": " + mount);
            } else {
                assertEquals("volume", mount.path("type").asText(), service + " " + entry + ": " + mount);
                JsonNode volume = volumes.path(mount.path("source").asText());
                assertEquals("local", volume.path("driver").asText(), service + " " + entry + ": " + volume);
                assertEquals("tmpfs", volume.path("driver_opts").path("type").asText(), volume.toString());
                assertEquals(options, volume.path("driver_opts").path("o").asText(), "Compose's options, verbatim");
            }
        }
        if (from.path("tmpfs").toString().contains("/tmp:size=16m")) {
            JsonNode tmpMount = list(to.path("volumes")).stream().filter(v -> v.path("target").asText().equals("/tmp"))
                    .findFirst().orElseThrow();
            assertEquals(16L << 20, tmpMount.path("tmpfs").path("size").asLong(), "16m in bytes");
        }
    }

    /** A copy of Compose's deploy section with resources.*.cpus as text, which the v3 schema wants. */
    private JsonNode withCpusAsText(JsonNode deploy) {
        JsonNode copy = deploy.deepCopy();
        copy.path("resources").forEach(r -> {
            if (r.has("cpus")) {
                ((com.fasterxml.jackson.databind.node.ObjectNode) r).put("cpus", r.path("cpus").asText());
            }
        });
        return copy;
    }

    /** scripts/swarm-stack.sh [-f FILE]... config, isolated like composeConfig (an empty env file). */
    private Outcome swarmStack(String... overlays) throws Exception {
        Path emptyEnv = Files.createFile(tmp.resolve("empty-" + System.nanoTime() + ".env"));
        List<String> command = new ArrayList<>(List.of(
                Project.root().resolve("scripts/swarm-stack.sh").toString()));
        for (String overlay : overlays) {
            command.add("-f");
            command.add(overlay);
        }
        command.add("config");
        return run(command, Map.of("COMPOSE_ENV_FILES", emptyEnv.toString()));
    }

    private static List<Map.Entry<String, JsonNode>> entries(JsonNode object) {
        List<Map.Entry<String, JsonNode>> entries = new ArrayList<>();
        object.fields().forEachRemaining(entries::add);
        return entries;
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
        return json.readTree(run(command, env).ok(String.join(" ", command)).stdout());
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

    private void assumeComposeAvailable() {
        Outcome version = version("docker", "compose", "version", "--short");
        assumeTrue(version.status() == 0, "docker compose (the Compose v2 CLI plugin) is not available: "
                + version.output().strip());
        Matcher m = Pattern.compile("\\d+\\.\\d+\\.\\d+").matcher(version.stdout());
        assertTrue(m.find(), "cannot read the Compose version from: " + version.stdout());
        assertTrue(Version.parse(m.group()).compareTo(MIN_COMPOSE) >= 0,
                "the compose files need Docker Compose >= 2.24 (!reset, !override); found " + m.group());
    }

    /** A rule with this action on exactly this repository path (and target, unless null). */
    private static boolean hasRule(List<JsonNode> watch, String action, String repoPath, String target) {
        Path root = Project.root();
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

    /** Isolated from the caller's environment: none of the variables the files interpolate. */
    private static Outcome run(List<String> command, Map<String, String> env) {
        Map<String, String> isolated = new HashMap<>();
        INTERPOLATED.forEach(name -> isolated.put(name, null));
        isolated.putAll(env);
        return Processes.run(Duration.ofMinutes(2), command, isolated);
    }

    /** A tool's version; a tool that is not installed gives a non-zero status. */
    private static Outcome version(String... command) {
        try {
            return run(List.of(command), Map.of());
        } catch (UncheckedIOException e) {
            return new Outcome(127, "", e.toString());
        }
    }
}

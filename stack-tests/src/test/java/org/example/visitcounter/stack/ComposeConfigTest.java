package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.module.ModuleDescriptor.Version;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Processes.Outcome;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The merged model Compose actually runs: {@code docker compose -f compose.yaml [-f overlay] config},
 * compared with what each file promises, written as JSON fragments ({@link #assertHas}). That needs
 * only the Compose CLI plugin, no Docker engine; where the plugin is absent the tests skip. The
 * Swarm checks also need jq (scripts/swarm-stack.sh); {@code docker stack config} needs no engine.
 */
class ComposeConfigTest {
    private static final Set<String> INTERPOLATED = Set.of("HTTP_PORT", "REGISTRY", "TAG", "REDIS_APPENDFSYNC",
            "REDIS_DEV_PORT", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_ENV_FILES",
            "COMPOSE_PATH_SEPARATOR");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    /** The Compose v2 plugin (skipped without it, except in CI), 2.24 or newer for the merge tags !reset and !override. */
    @BeforeAll
    static void composeAvailable() {
        Processes.assumeTool("it merges the compose files", "docker", "compose", "version");
        String found = run(List.of("docker", "compose", "version", "--short"), Map.of()).stdout().strip().replaceFirst("^v", "");
        assertTrue(Version.parse(found).compareTo(Version.parse("2.24")) >= 0,
                "the compose files need Docker Compose >= 2.24 (!reset, !override); found " + found);
    }

    @Test
    void baseFile() throws Exception {
        JsonNode config = composeConfig(Map.of(), "compose.yaml");
        assertHas(config, """
                {"name": "visit-counter", "services": {
                  "web": {"deploy": {"replicas": 3}, "depends_on": {"redis": {"condition": "service_healthy"}},
                          "environment": {"REDIS_URL": "redis://redis:6379"}, "ports": "<absent>",
                          "healthcheck": {"test": ["CMD", "wget", "-q", "-T", "2", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]},
                          "networks": {"front": null, "back": null}},
                  "redis": {"networks": {"back": null, "front": "<absent>"}, "ports": "<absent>"},
                  "nginx": {"depends_on": {"web": {"condition": "service_healthy"}}, "networks": {"front": null, "back": "<absent>"},
                            "ports": [{"host_ip": "127.0.0.1", "published": "8080", "target": 8080}]}}}""");
        assertEquals(Set.of("nginx", "redis", "web"), names(config.path("services")));
    }

    @Test
    void devOverlay() throws Exception {
        JsonNode config = composeConfig(Map.of(), "compose.yaml", "dev.compose.yaml");
        assertHas(config, """
                {"services": {
                  "web": {"build": {"target": "dev", "dockerfile": "web-app/Dockerfile"}, "restart": "no",
                          "environment": {"LOG_LEVEL": "debug", "LOG_FORMAT": "plain", "REDIS_URL": "redis://redis:6379"},
                          "ports": [{"host_ip": "127.0.0.1", "target": 5005}]},
                  "redis": {"ports": [{"host_ip": "127.0.0.1", "published": "6379"}]}}}""");
        List<String> watch = watchRules(config.path("services").path("web"));
        // Manifests first: every rebuild rule comes before the first sync rule.
        assertTrue(watch.stream().dropWhile(r -> r.startsWith("rebuild ")).noneMatch(r -> r.startsWith("rebuild ")),
                "rebuild rules precede sync rules: " + watch);
        // Sync only for Java: the dev server reloads the synced sources in its running JVM
        // (sync+restart would restart every replica at once).
        assertTrue(watch.containsAll(List.of("rebuild pom.xml", "rebuild web-app/pom.xml", "rebuild web-app/Dockerfile",
                "rebuild dev-server/src/main", "sync web-app/src/main/resources/public -> /app/static",
                "sync web-app/src/main/java -> /app/src/main/java")), "web's watch rules: " + watch);
        List<String> nginxWatch = watchRules(config.path("services").path("nginx"));
        assertTrue(nginxWatch.contains("sync+restart nginx/proxy.conf -> /etc/nginx/conf.d/proxy.conf"),
                "nginx config is synced and nginx restarted: " + nginxWatch);
    }

    @Test
    void prodOverlay() throws Exception {
        JsonNode config = composeConfig(Map.of(), "compose.yaml", "prod.compose.yaml", secretOverlay());
        // nginx: !override replaces the base port instead of adding to it. web: the base build
        // section is kept (build + push by name). Redis: never published, no password on its command line.
        assertHas(config, """
                {"services": {
                  "nginx": {"ports": [{"published": "80", "host_ip": "0.0.0.0", "target": 8080}],
                            "environment": {"NGINX_RATE_LIMIT": "on"}, "image": "localhost:5000/visit-counter-nginx:latest"},
                  "web": {"image": "localhost:5000/visit-counter-web:latest", "build": {"dockerfile": "web-app/Dockerfile"},
                          "deploy": {"replicas": 3, "restart_policy": {"condition": "on-failure"},
                                     "resources": {"limits": {"memory": "<present>"}, "reservations": {"memory": "<present>"}}},
                          "environment": {"LOG_FORMAT": "json", "REDIS_PASSWORD_FILE": "/run/secrets/redis_password",
                                          "REDIS_URL": "redis://redis:6379"},
                          "read_only": true, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"],
                          "stop_signal": "SIGTERM", "logging": {"driver": "json-file"},
                          "healthcheck": {"test": ["CMD", "wget", "-q", "-T", "2", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]}},
                  "redis": {"secrets": [{"source": "redis_password"}], "volumes": [{"source": "redis-data"}], "ports": "<absent>"}},
                 "networks": {"back": {"internal": true}}, "volumes": {"redis-data": {}}}""");
        List<String> command = strings(config.at("/services/redis/command"));
        assertTrue(command.containsAll(List.of("--appendonly", "yes", "--appendfsync", "everysec")), command.toString());
        // Redis reads stdin only for a `-` first or last; first, because entrypoints append arguments.
        assertEquals(List.of("redis-server", "-"), command.subList(0, 2), "`-` (config from stdin) first: " + command);
        assertFalse(config.path("services").path("redis").toString().contains("--requirepass"), "no password on the command line");
    }

    @Test
    void prodSettingsComeFromTheEnvironment() throws Exception {
        JsonNode config = composeConfig(Map.of("REDIS_APPENDFSYNC", "always", "HTTP_PORT", "8088",
                "REGISTRY", "registry.example:5000", "TAG", "1.2.3"), "compose.yaml", "prod.compose.yaml", secretOverlay());
        assertTrue(strings(config.at("/services/redis/command")).contains("always"));
        assertHas(config, """
                {"services": {"nginx": {"ports": [{"published": "8088"}]},
                              "web": {"image": "registry.example:5000/visit-counter-web:1.2.3"}}}""");
    }

    /**
     * scripts/swarm-stack.sh: the stack file for `docker stack deploy`, derived from Compose's own
     * merge of compose.yaml + prod.compose.yaml. The stack loader accepts it, and every setting
     * the script does not rewrite is Compose's, unchanged: nothing of the prod overlay is restated.
     */
    @Test
    void swarmStackFileIsDerivedFromTheProdMerge() throws Exception {
        String secret = secretOverlay();
        JsonNode compose = composeConfig(Map.of(), "compose.yaml", "prod.compose.yaml", secret);
        String generated = swarmStack(secret).ok("scripts/swarm-stack.sh config").stdout();
        JsonNode stack = JSON.readTree(generated);
        Path file = Files.writeString(tmp.resolve("stack.json"), generated);
        run(List.of("docker", "stack", "config", "-c", file.toString()), Map.of()).ok("docker stack config (the stack loader)");

        assertEquals(names(compose.path("services")), names(stack.path("services")));
        Set<String> rewritten = Set.of("build", "restart", "depends_on", "tmpfs", "ports", "deploy", "volumes");
        compose.path("services").properties().forEach(service -> {
            String name = service.getKey();
            JsonNode from = service.getValue();
            JsonNode to = stack.path("services").path(name);
            assertHas(to, """
                    {"build": "<absent>", "restart": "<absent>", "depends_on": "<absent>", "tmpfs": "<absent>"}""");
            from.properties().stream().filter(s -> !rewritten.contains(s.getKey()) && !s.getValue().isNull())
                    .forEach(s -> assertEquals(s.getValue(), to.path(s.getKey()), name + "." + s.getKey() + " must be Compose's"));
            assertEquals(withCpusAsText(from.path("deploy")), to.path("deploy"), name + ".deploy: Compose's, CPUs as text");
            from.path("volumes").forEach(volume -> assertTrue(to.path("volumes").valueStream().toList().contains(volume),
                    name + ": Compose's mount " + volume + " is kept"));
            tmpfsBecameMounts(name, from, to, stack.path("volumes"));
        });
        // No top-level name: the stack name is deploy's argument. One nginx port, prod's !override
        // honoured (Swarm would have merged both), in host mode: bound where nginx runs, and nginx
        // sees client addresses. 3.12: the format with healthcheck.start_interval.
        assertHas(stack, """
                {"version": "3.12", "name": "<absent>",
                 "services": {"nginx": {"ports": [{"published": 80, "target": 8080, "mode": "host", "host_ip": "<absent>"}]},
                              "web": {"deploy": {"endpoint_mode": "dnsrr", "update_config": {"order": "start-first"}, "replicas": 3}}},
                 "networks": {"back": {"internal": true}}}""");
        for (String top : List.of("networks", "volumes", "secrets")) {
            stack.path(top).properties().forEach(item -> assertTrue(item.getValue().path("name").isMissingNode(),
                    top + "." + item.getKey() + " keeps no Compose-made name, so the stack namespace applies"));
        }
        assertTrue(stack.at("/secrets/redis_password/file").asText().endsWith("redis_password.txt"));
    }

    @Test
    void swarmStackRefusesAPortSwarmCannotBindLikeCompose() throws Exception {
        Path loopback = Files.writeString(tmp.resolve("loopback.override.yaml"),
                "services:\n  nginx:\n    ports: !override\n      - \"127.0.0.1:8080:8080\"\n");
        Outcome result = swarmStack(secretOverlay(), loopback.toString());
        assertTrue(result.status() != 0, "a loopback-only port must not silently become public:\n" + result.output());
        assertTrue(result.stderr().contains("Swarm binds all interfaces"), result.output());
    }

    /**
     * Fails unless {@code actual} holds everything the JSON {@code expected} names: objects only
     * the keys named ({@code "<absent>"}: the key must not be there; {@code "<present>"}: any value),
     * arrays element by element and of the same length, values by their text (so "8080" matches 8080).
     */
    static void assertHas(JsonNode actual, String expected) {
        try {
            assertHas(actual, JSON.readTree(expected), "");
        } catch (IOException e) {
            throw new UncheckedIOException("the expected JSON", e);
        }
    }

    private static void assertHas(JsonNode actual, JsonNode expected, String at) {
        if (expected.asText().equals("<absent>")) {
            assertTrue(actual.isMissingNode(), at + " must be absent: " + actual);
        } else if (expected.asText().equals("<present>")) {
            assertFalse(actual.isMissingNode(), at + " is missing");
        } else if (expected.isObject()) {
            assertTrue(actual.isObject(), at + " must be an object: " + actual);
            expected.properties().forEach(e -> assertHas(actual.path(e.getKey()), e.getValue(), at + "/" + e.getKey()));
        } else if (expected.isArray()) {
            assertEquals(expected.size(), actual.size(), at + ": " + actual);
            for (int i = 0; i < expected.size(); i++) {
                assertHas(actual.path(i), expected.get(i), at + "/" + i);
            }
        } else {
            assertEquals(expected.asText(), actual.asText(), at);
        }
    }

    /** "action path" or "action path -> target", the path relative to the repository (or its real path). */
    private static List<String> watchRules(JsonNode service) throws IOException {
        String roots = Pattern.quote(Project.root() + "/") + "|" + Pattern.quote(Project.root().toRealPath() + "/");
        return service.path("develop").path("watch").valueStream().map(rule -> rule.path("action").asText() + " "
                + rule.path("path").asText().replaceFirst("^(" + roots + ")", "")
                + (rule.has("target") ? " -> " + rule.path("target").asText() : "")).toList();
    }

    /**
     * Each service-level tmpfs entry is a mount of the stack service: a Swarm tmpfs when it has a
     * size at most, else a tmpfs volume of the local driver with Compose's options verbatim.
     */
    private static void tmpfsBecameMounts(String service, JsonNode from, JsonNode to, JsonNode volumes) {
        for (String entry : strings(from.path("tmpfs"))) {
            String[] parts = (entry + ":").split(":", 3); // the target, then the options (maybe none)
            JsonNode mount = to.path("volumes").valueStream().filter(v -> v.path("target").asText().equals(parts[0]))
                    .findFirst().orElseThrow(() -> new AssertionError(service + ": no mount for tmpfs " + entry));
            String what = service + " " + entry + ": " + mount;
            if (parts[1].matches("(size=[^,]+)?")) {
                assertEquals("tmpfs", mount.path("type").asText(), what);
            } else {
                assertEquals("volume", mount.path("type").asText(), what);
                JsonNode volume = volumes.path(mount.path("source").asText());
                assertEquals("local/tmpfs/" + parts[1], volume.path("driver").asText() + "/"
                        + volume.at("/driver_opts/type").asText() + "/" + volume.at("/driver_opts/o").asText(),
                        what + ": a tmpfs volume with Compose's options, verbatim: " + volume);
            }
            if (entry.equals("/tmp:size=16m")) {
                assertEquals(16L << 20, mount.at("/tmpfs/size").asLong(), "16m in bytes");
            }
        }
    }

    /** A copy of Compose's deploy section with resources.*.cpus as text, which the v3 schema wants. */
    private static JsonNode withCpusAsText(JsonNode deploy) {
        JsonNode copy = deploy.deepCopy();
        copy.path("resources").valueStream().filter(r -> r.has("cpus"))
                .forEach(r -> ((ObjectNode) r).put("cpus", r.path("cpus").asText()));
        return copy;
    }

    /** scripts/swarm-stack.sh [-f FILE]... config, isolated like composeConfig (no .env read). */
    private static Outcome swarmStack(String... overlays) {
        Processes.assumeTool("scripts/swarm-stack.sh needs it", "jq", "--version");
        List<String> command = Stream.of(Stream.of(Project.root().resolve("scripts/swarm-stack.sh").toString()),
                Stream.of(overlays).flatMap(overlay -> Stream.of("-f", overlay)), Stream.of("config"))
                .flatMap(s -> s).toList();
        return run(command, Map.of("COMPOSE_ENV_FILES", "/dev/null"));
    }

    /** {@code docker compose -f FILE... config}, no .env read, isolated by {@link #run}. */
    private static JsonNode composeConfig(Map<String, String> env, String... files) throws IOException {
        List<String> command = Stream.of(Stream.of("docker", "compose", "--env-file", "/dev/null"),
                Stream.of(files).flatMap(file -> Stream.of("-f", file)), Stream.of("config", "--format", "json"))
                .flatMap(s -> s).toList();
        return JSON.readTree(run(command, env).ok(String.join(" ", command)).stdout());
    }

    /** An extra overlay pointing the prod secret at a temporary file (config may check it exists). */
    private String secretOverlay() throws IOException {
        Path secret = Files.writeString(tmp.resolve("redis_password.txt"), "config-test-only\n").toAbsolutePath();
        return Files.writeString(tmp.resolve("secret.override.yaml"),
                "secrets:\n  redis_password:\n    file: " + secret + "\n").toAbsolutePath().toString();
    }

    private static Set<String> names(JsonNode node) {
        return node.propertyStream().map(Map.Entry::getKey).collect(Collectors.toSet());
    }

    private static List<String> strings(JsonNode array) {
        return array.valueStream().map(JsonNode::asText).toList();
    }

    /** Isolated from the caller's environment: none of the variables the files interpolate. */
    private static Outcome run(List<String> command, Map<String, String> env) {
        Map<String, String> isolated = new HashMap<>(env);
        INTERPOLATED.forEach(name -> isolated.putIfAbsent(name, null));
        return Processes.run(Duration.ofMinutes(2), command, isolated);
    }
}

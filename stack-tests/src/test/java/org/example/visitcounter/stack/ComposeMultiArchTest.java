package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.example.visitcounter.stack.support.DockerCli;
import org.example.visitcounter.stack.support.PageViews;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Registry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * docs/production.md, "Platforms": scripts/publish-images.sh builds web and nginx for linux/amd64
 * and linux/arm64 and pushes one tag each holding both (to Debian's docker-registry on loopback);
 * then a host of the other architecture than this engine's (under QEMU here) pulls the prod
 * overlay's images and runs them: up --wait, rotation and counting, /readyz, the hardening. Redis
 * stays on the engine's own platform: it is the official multi-arch image, not ours, and its
 * arm64 build refuses to start under QEMU user emulation (its check for an arm64 kernel bug).
 */
@Tag("docker")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ComposeMultiArchTest {
    private static final Duration PUBLISH = Duration.ofMinutes(20);
    private static final Duration COMMAND = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    private static DockerCli docker;
    private static Registry registry;
    private static String tag;
    private static String nativeArch;
    private static String foreignArch;
    private static ComposeStack stack;

    @BeforeAll
    static void publish() throws Exception {
        DockerCli.assumeEngine();
        docker = new DockerCli(Map.of());
        nativeArch = docker.run(COMMAND, "version", "--format", "{{.Server.Arch}}").ok("docker version").stdout().strip();
        foreignArch = nativeArch.equals("arm64") ? "amd64" : "arm64";
        registry = new Registry(tmp);
        tag = "multiarch-test-" + ProcessHandle.current().pid();
        var published = Processes.run(PUBLISH, List.of("scripts/publish-images.sh"),
                Map.of("REGISTRY", registry.address, "TAG", tag)).ok("scripts/publish-images.sh");
        // Its log says how long each platform's build took: the second one reuses the Maven stages.
        published.stderr().lines().filter(l -> l.contains(" built in ")).forEach(l -> System.out.println("multi-arch: " + l));
    }

    @AfterAll
    static void cleanUp() throws Exception {
        try {
            if (stack != null) {
                stack.close();
            }
            if (docker != null) {
                removeLocalImages();
            }
        } finally {
            if (registry != null) {
                registry.close();
            }
        }
    }

    @Test
    @Order(1)
    void eachTagHoldsBothPlatforms() throws Exception {
        for (String name : List.of("web", "nginx")) {
            JsonNode list = JSON.readTree(docker.run(COMMAND, "buildx", "imagetools", "inspect", "--raw", image(name))
                    .ok("imagetools inspect " + image(name)).stdout());
            Set<String> platforms = list.path("manifests").valueStream()
                    .map(m -> m.at("/platform/os").asText() + "/" + m.at("/platform/architecture").asText())
                    .collect(Collectors.toSet());
            System.out.println("multi-arch: " + image(name) + " holds " + platforms);
            assertEquals(Set.of("linux/amd64", "linux/arm64"), platforms, image(name) + ": " + list);
        }
    }

    /** Only a native build trains the AOT cache; a cross-built image names none (docs/production.md). */
    @Test
    @Order(2)
    void onlyTheNativeImageCarriesAnAotCache() {
        for (String arch : List.of(nativeArch, foreignArch)) {
            String options = docker.run(COMMAND, "run", "--rm", "--platform", "linux/" + arch, "--entrypoint", "cat",
                    image("web") + "-" + arch, "/app/aot.options").ok("aot.options of " + arch).stdout().strip();
            assertEquals(arch.equals(nativeArch) ? "-XX:AOTCache=/app/web-app.aot" : "", options, arch + "'s aot.options");
        }
        // A cache that does not fit (here: trained with another class path) is not fatal: the JVM says why and runs.
        var mismatch = docker.run(COMMAND, "run", "--rm", "--entrypoint", "java", image("web") + "-" + nativeArch,
                "-XX:AOTCache=/app/web-app.aot", "-version").ok("java -version with a cache that does not fit");
        assertTrue(mismatch.output().contains("shared class paths mismatch"), mismatch.output());
    }

    @Test
    @Order(3)
    void aHostOfTheOtherArchitecturePullsAndRunsTheProdStack() throws Exception {
        removeLocalImages(); // the host has only what the registry gives it
        Path secret = Files.writeString(tmp.resolve("redis_password.txt"), "multi-arch-test\n");
        // What emulation costs (docs/production.md, "Platforms"): replicas start in about 50 s, past
        // the 30 s start period, and QEMU's translated code counts against the memory limit, which
        // the prod overlay's 256 MiB is too small for (the kernel OOM-killed them). Redis runs on
        // the engine's own platform (see the class comment).
        Path overlay = Files.writeString(tmp.resolve("emulated.override.yaml"), """
                services:
                  redis:
                    platform: linux/%s
                  web:
                    healthcheck:
                      start_period: 300s
                    deploy:
                      resources:
                        limits:
                          memory: 1g
                  nginx:
                    healthcheck:
                      start_period: 300s
                secrets:
                  redis_password:
                    file: %s
                """.formatted(nativeArch, secret));
        long start = System.nanoTime();
        // PROD_UP's files through COMPOSE_FILE, with the overlay above: the same merge, one file more.
        stack = ComposeStack.up("compose up -d --wait", Map.of("COMPOSE_FILE", "compose.yaml:prod.compose.yaml:" + overlay,
                "REGISTRY", registry.address, "TAG", tag, "DOCKER_DEFAULT_PLATFORM", "linux/" + foreignArch));
        System.out.printf("multi-arch: the prod stack for linux/%s pulled and healthy (up --wait) after %.0f s under emulation%n",
                foreignArch, (System.nanoTime() - start) / 1e9);

        var web = stack.containers("web");
        assertEquals(3, web.size(), stack.diagnosis());
        for (var c : stack.ps(false)) {
            if (c.service().equals("redis")) {
                continue;
            }
            String image = stack.inspect(c.id()).path("Image").asText();
            assertEquals(foreignArch, docker.run(COMMAND, "image", "inspect", "--format", "{{.Architecture}}", image)
                    .ok("image inspect").stdout().strip(), c.service() + "'s image");
            assertEquals(ComposeStack.HARDENED, stack.hardening(c.id()), c.service() + ": the prod overlay's hardening");
        }
        for (var c : web) {
            assertEquals(foreignArch.equals("arm64") ? "aarch64" : "x86_64",
                    docker.run(COMMAND, "exec", c.id(), "uname", "-m").ok("uname -m").stdout().strip());
            assertEquals("10001", docker.run(COMMAND, "exec", c.id(), "id", "-u").ok("id -u").stdout().strip());
            // A live PING within REDIS_TIMEOUT_MS: an emulated JVM may miss that once while its JIT warms up.
            await(c.id() + " /readyz (Redis reachable)", COMMAND).pollInterval(Duration.ofSeconds(1))
                    .until(() -> docker.run(COMMAND, "exec", c.id(), "wget", "-q", "-T", "5", "-O", "/dev/null",
                            "http://127.0.0.1:8080/readyz").status() == 0);
        }
        // A cold emulated JVM can answer a request's first code path after nginx's 5 s read timeout;
        // nginx then rests that replica for fail_timeout (5 s). So: until the JITs are warm.
        await("strict rotation once the emulated replicas are warm", Duration.ofMinutes(3))
                .pollInterval(Duration.ofSeconds(6)).ignoreExceptionsInstanceOf(IOException.class)
                .untilAsserted(() -> PageViews.assertStrictRotation(stack.uri("/"), 3));
        for (var c : web) {
            System.out.println("multi-arch: emulated " + docker.run(COMMAND, "stats", "--no-stream", "--format",
                    "{{.Name}} memory {{.MemUsage}}", c.id()).ok("docker stats").stdout().strip());
            assertEquals(0, stack.inspect(c.id()).path("RestartCount").asInt(), c.name() + " died and was restarted");
        }
    }

    /** The published tags and their per-platform parts, as far as this engine has them. */
    private static void removeLocalImages() {
        for (String name : List.of("web", "nginx")) {
            for (String suffix : List.of("", "-amd64", "-arm64")) {
                docker.run(COMMAND, "image", "rm", "--force", image(name) + suffix);
            }
        }
    }

    private static String image(String name) {
        return registry.address + "/visit-counter-" + name + ":" + tag;
    }
}

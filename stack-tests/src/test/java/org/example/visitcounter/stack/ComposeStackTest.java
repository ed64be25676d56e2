package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.Ports;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.ComposeContainer;
import org.testcontainers.containers.ContainerState;
import org.testcontainers.containers.wait.strategy.Wait;

/**
 * The real stack under Docker Compose, built from this repository: compose.yaml alone and with
 * each overlay. Flow 1 through nginx: sequential GETs of / count up by exactly one each and
 * rotate over the 3 web replicas.
 *
 * <p>Needs a Docker engine (and the Compose v2 plugin); without one the whole class is skipped,
 * except in CI, where it fails ({@link DockerCli#assumeEngine()}).
 * The first run builds the images (Maven inside the build: minutes); later runs hit the build
 * cache. Each variant runs as its own throw-away Compose project (random name): containers,
 * networks, volumes and its built images are removed afterwards. A last overlay, written to a
 * temporary directory, only adapts the stack to a test: no fixed host ports (nginx gets a random
 * loopback port, nothing else is published, so a stack a developer already runs does not
 * clash), and for prod a temporary Redis password file instead of ./secrets.
 */
class ComposeStackTest {

    private static final Duration STARTUP_TIMEOUT = Duration.ofMinutes(15);
    private static final Duration PROXY_READY_TIMEOUT = Duration.ofSeconds(60);
    private static final int REPLICAS = 3;
    private static final int REQUESTS = 3 * REPLICAS;

    enum Variant {
        BASE(),
        DEV("dev.compose.yaml"),
        PROD("prod.compose.yaml");

        final List<String> overlays;

        Variant(String... overlays) {
            this.overlays = List.of(overlays);
        }
    }

    @TempDir
    Path tmp;

    /** Skips without an engine, except in CI, where every Docker test must run (DockerCli). */
    @BeforeAll
    static void engine() {
        DockerCli.assumeEngine();
    }

    private final HttpClient http = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();

    @ParameterizedTest(name = "{0}")
    @EnumSource(Variant.class)
    void sequentialVisitsCountUpAndRotateOverTheReplicas(Variant variant) throws Exception {
        Path root = ComposeLintTest.projectRoot();
        List<File> files = new ArrayList<>();
        files.add(root.resolve("compose.yaml").toFile());
        for (String overlay : variant.overlays) {
            files.add(root.resolve(overlay).toFile());
        }
        files.add(testOverlay(variant).toFile());

        ComposeContainer compose = new ComposeContainer(files)
                .withBuild(true)
                .withPull(false) // prod image names point at a registry; `up` still pulls redis
                .withRemoveImages(ComposeContainer.RemoveImages.LOCAL)
                .withRemoveVolumes(true)
                // A tag of this run's own: the prod images are named ${REGISTRY}/visit-counter-*:${TAG}
                // (not by project), and the cleanup below removes them, so a fixed tag would let a
                // run on the same engine at the same time remove or overwrite this run's images.
                .withEnv("TAG", "stack-test-" + UUID.randomUUID().toString().substring(0, 8))
                .withTailChildContainers(false)
                // `up` itself waits for redis healthy, then every web replica healthy (depends_on);
                // nginx healthy means it has loaded its configuration and listens.
                .waitingFor("nginx", Wait.forHealthcheck().withStartupTimeout(STARTUP_TIMEOUT))
                .withStartupTimeout(STARTUP_TIMEOUT);
        try {
            compose.start();
            ContainerState nginx = compose.getContainerByServiceName("nginx")
                    .orElseThrow(() -> new AssertionError("no nginx container"));
            URI base = URI.create("http://" + dockerHost() + ":" + publishedPort(nginx, 8080));

            awaitProxyServes(base);
            flowOne(base);
        } finally {
            compose.stop();
        }
    }

    /** Flow 1: sequential visits through nginx count up by one and rotate over the replicas. */
    private void flowOne(URI base) throws Exception {
        List<Long> counts = new ArrayList<>();
        List<String> servedBy = new ArrayList<>();
        for (int i = 0; i < REQUESTS; i++) {
            HttpResponse<String> response = http.send(
                    HttpRequest.newBuilder(base.resolve("/")).timeout(Duration.ofSeconds(10)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode(), "GET / #" + i + ": " + response.body());
            String count = response.headers().firstValue("X-Visit-Count").orElse(null);
            String replica = response.headers().firstValue("X-Served-By").orElse(null);
            assertNotNull(count, "GET / #" + i + " has no X-Visit-Count header: " + response.headers().map());
            assertNotNull(replica, "GET / #" + i + " has no X-Served-By header: " + response.headers().map());
            counts.add(Long.parseLong(count.strip()));
            servedBy.add(replica.strip());
        }

        for (int i = 1; i < counts.size(); i++) {
            assertEquals(counts.get(0) + i, counts.get(i), "each visit counts exactly one: " + counts);
        }
        assertEquals(REPLICAS, new HashSet<>(servedBy).size(), "three distinct replicas served: " + servedBy);
        // Round robin: the first REPLICAS requests hit every replica once, then the order repeats.
        for (int i = REPLICAS; i < servedBy.size(); i++) {
            assertEquals(servedBy.get(i - REPLICAS), servedBy.get(i), "round-robin rotation: " + servedBy);
        }
    }

    /**
     * nginx reports healthy as soon as it listens; its `resolve` upstream fills in within moments.
     * Poll the non-counting endpoint through the proxy, with a deadline; on a timeout the failure
     * shows the last answer ("status body"), or the last connection error as its cause.
     */
    private void awaitProxyServes(URI base) {
        await("nginx to serve GET /api/visits with 200", PROXY_READY_TIMEOUT).pollInterval(Duration.ofMillis(250))
                .ignoreExceptionsInstanceOf(IOException.class).until(() -> {
                    HttpResponse<String> response = http.send(
                            HttpRequest.newBuilder(base.resolve("/api/visits")).timeout(Duration.ofSeconds(5)).GET().build(),
                            HttpResponse.BodyHandlers.ofString());
                    return response.statusCode() + " " + response.body();
                }, answer -> answer.startsWith("200 "));
    }

    /** The test-only overlay (last -f file): random loopback port for nginx, nothing else published. */
    private Path testOverlay(Variant variant) throws IOException {
        String nginxPort = isLocalDocker() ? "127.0.0.1::8080" : "8080";
        StringBuilder yaml = new StringBuilder()
                .append("services:\n")
                .append("  nginx:\n")
                .append("    ports: !override\n")
                .append("      - \"").append(nginxPort).append("\"\n")
                .append("  redis:\n")
                .append("    ports: !reset []\n")
                .append("  web:\n")
                .append("    ports: !reset []\n");
        if (variant == Variant.PROD) {
            Path secret = tmp.resolve("redis_password.txt");
            Files.writeString(secret, "stack-test-" + Long.toHexString(System.nanoTime()) + "\n");
            // Read by uid 999 (redis) and 10001 (web) inside the containers.
            secret.toFile().setReadable(true, false);
            yaml.append("secrets:\n")
                    .append("  redis_password:\n")
                    .append("    file: ").append(secret.toAbsolutePath()).append('\n');
        }
        Path overlay = tmp.resolve("stack-test." + variant.name().toLowerCase(Locale.ROOT) + ".compose.yaml");
        Files.writeString(overlay, yaml);
        return overlay;
    }

    /**
     * The host port Docker picked for a container port. Read from the container itself: the
     * Compose helper's getMappedPort only knows ports routed through its ambassador container,
     * which we do not use (it links by legacy links, and nginx sits on a user-defined network).
     */
    private static int publishedPort(ContainerState container, int containerPort) {
        Ports.Binding[] bindings = container.getContainerInfo().getNetworkSettings().getPorts().getBindings()
                .get(ExposedPort.tcp(containerPort));
        if (bindings == null || bindings.length == 0 || bindings[0] == null) {
            throw new AssertionError("container port " + containerPort + " is not published");
        }
        return Integer.parseInt(bindings[0].getHostPortSpec());
    }

    private static String dockerHost() {
        return DockerClientFactory.instance().dockerHostIpAddress();
    }

    private static boolean isLocalDocker() {
        String host = dockerHost();
        return host.equals("localhost") || host.startsWith("127.") || host.equals("::1");
    }
}

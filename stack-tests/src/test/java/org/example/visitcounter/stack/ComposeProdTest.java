package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.example.visitcounter.stack.support.Waits.explained;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.example.visitcounter.stack.support.DocCommands;
import org.example.visitcounter.stack.support.DockerCli;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.PageViews;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The production overlay on the real engine, with README.md's commands: build, push to a
 * registry (Debian's docker-registry on loopback, started and stopped here), and `up -d --wait`
 * on a host that has to pull the images it lacks; then what the overlay promises: the Redis
 * password secret, read-only root file systems, non-root users without capabilities, nginx
 * hiding the operational endpoints, the rate limit, and the count surviving `down` + `up` but
 * not `down -v`.
 */
@Tag("docker")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ComposeProdTest {
    private static final String FILES = DocCommands.PROD_FILES;
    private static final Duration BUILD = Duration.ofMinutes(15);
    private static final Duration UP = Duration.ofMinutes(3);
    private static final Path SECRET = Path.of("secrets/redis_password.txt");

    @TempDir
    static Path tmp;

    private static DockerCli docker;
    private static URI base;
    private static String registry;
    private static String tag;
    private static Process registryProcess;
    private static Path secret;
    private static boolean secretCreatedHere;

    @BeforeAll
    static void prepare() throws Exception {
        DockerCli.assumeEngine();
        secret = Project.root().resolve(SECRET);
        if (!Files.exists(secret)) {
            // README's step: a random password, readable by the containers' users. A developer's
            // own secret is used as it is and never touched.
            Files.createDirectories(secret.getParent());
            byte[] random = new byte[32];
            new SecureRandom().nextBytes(random);
            Files.writeString(secret, HexFormat.of().formatHex(random) + "\n");
            Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-r--r--"));
            secretCreatedHere = true;
        }
        registry = "127.0.0.1:" + startRegistry();
        tag = "prod-test-" + ProcessHandle.current().pid();
        int httpPort = Ports.freeBlock(1);
        Map<String, String> env = DockerCli.projectEnv("vc-prod-" + ProcessHandle.current().pid(), httpPort);
        env.put("REGISTRY", registry);
        env.put("TAG", tag);
        docker = new DockerCli(env);
        base = URI.create("http://127.0.0.1:" + httpPort);
    }

    @AfterAll
    static void cleanUp() throws Exception {
        try {
            if (docker != null) {
                docker.docker(Duration.ofMinutes(2), DocCommands.PROD_DOWN_VOLUMES).ok(DocCommands.PROD_DOWN_VOLUMES);
                for (String image : appImages()) {
                    docker.run(Duration.ofMinutes(1), "image", "rm", "--force", image);
                }
            }
        } finally {
            if (registryProcess != null) {
                registryProcess.destroy();
                registryProcess.waitFor();
            }
            if (secretCreatedHere) {
                Files.deleteIfExists(secret);
            }
        }
    }

    @Test
    @Order(1)
    void buildPushAndAHostThatPulls() throws Exception {
        docker.docker(BUILD, DocCommands.PROD_BUILD).ok(DocCommands.PROD_BUILD);
        docker.docker(BUILD, DocCommands.PROD_PUSH).ok(DocCommands.PROD_PUSH);
        for (String image : appImages()) {
            String repository = image.substring(registry.length() + 1, image.lastIndexOf(':'));
            String tags = Http.get(URI.create("http://" + registry + "/v2/" + repository + "/tags/list")).body();
            assertTrue(tags.contains('"' + tag + '"'), "the registry has " + image + ": " + tags);
            // The host has only what the registry gives it.
            docker.run(Duration.ofMinutes(1), "image", "rm", image).ok("image rm " + image);
        }
        String up = docker.docker(UP, DocCommands.PROD_UP).ok(DocCommands.PROD_UP).output();
        for (String image : appImages()) {
            docker.run(Duration.ofSeconds(30), "image", "inspect", image).ok("pulled " + image + "; up said:\n" + up);
        }
        PageViews.assertStrictRotation(base, 3);
    }

    @Test
    @Order(2)
    void redisRefusesAClientWithoutThePassword() throws Exception {
        String password = Files.readString(secret).strip();
        String anonymous = docker.docker(Duration.ofSeconds(30), FILES + "exec -T redis redis-cli ping").output();
        assertTrue(anonymous.contains("NOAUTH"), "redis-cli without the password: " + anonymous);
        String inspect = docker.docker(Duration.ofSeconds(30), FILES + "ps -q redis").ok("ps").output().strip();
        String config = docker.run(Duration.ofSeconds(30), "inspect", inspect).ok("inspect").output();
        assertFalse(config.contains(password), "the password must not be in the container's configuration");
        assertTrue(docker.run(Duration.ofSeconds(30), "exec", "-e", "REDISCLI_AUTH=" + password, inspect,
                "redis-cli", "ping").ok("redis-cli with the password").output().contains("PONG"));
    }

    @Test
    @Order(3)
    void everyContainerIsReadOnlyUnprivilegedAndWithoutCapabilities() {
        Map<String, String> users = Map.of("web", "10001", "nginx", "101", "redis", "999");
        for (var service : users.entrySet()) {
            String ids = docker.docker(Duration.ofSeconds(30), FILES + "ps -q " + service.getKey()).ok("ps").output();
            for (String id : ids.strip().split("\\s+")) {
                String host = docker.run(Duration.ofSeconds(30), "inspect", "-f",
                        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}", id)
                        .ok("inspect").output().strip();
                assertEquals("true [ALL] [no-new-privileges:true]", host, service.getKey() + " " + id);
                assertEquals(service.getValue(), docker.run(Duration.ofSeconds(30), "exec", id, "id", "-u")
                        .ok("id -u").output().strip(), service.getKey() + "'s user");
                var write = docker.run(Duration.ofSeconds(30), "exec", id, "sh", "-c", "echo x > /probe");
                assertNotEquals(0, write.status(), service.getKey() + " could write its root file system");
                assertTrue(write.output().contains("Read-only file system"), write.output());
            }
        }
    }

    @Test
    @Order(4)
    void nginxLimitsTheRate() throws Exception {
        // The operational endpoints are hidden by the same nginx image: StackPromisesTest.
        // 20 requests/s with bursts of 40 per client: 80 back to back run into the limit.
        int ok = 0;
        int limited = 0;
        for (int i = 0; i < 80; i++) {
            int status = Http.get(base.resolve("/api/visits")).statusCode();
            if (status == 200) {
                ok++;
            } else if (status == 429) {
                limited++;
            } else {
                fail("unexpected status " + status);
            }
        }
        System.out.printf("prod: 80 requests back to back: %d × 200, %d × 429%n", ok, limited);
        assertTrue(ok >= 40, "the burst of 40 passes: " + ok);
        assertTrue(limited > 0, "beyond it, 429");
        awaitStatus("/api/visits", 200); // the bucket refills
    }

    @Test
    @Order(5)
    void theCountSurvivesDownAndUpButNotDownWithVolumes() throws Exception {
        for (int i = 0; i < 3; i++) {
            awaitStatus("/", 200); // a 429 (the rate limit of the test before) never reaches a replica
        }
        long before = total();
        assertTrue(before >= 3, "counted: " + before);
        docker.docker(UP, DocCommands.PROD_DOWN).ok(DocCommands.PROD_DOWN);
        docker.docker(UP, DocCommands.PROD_UP).ok(DocCommands.PROD_UP);
        assertEquals(before, total(), "the count after down + up");
        docker.docker(UP, DocCommands.PROD_DOWN_VOLUMES).ok(DocCommands.PROD_DOWN_VOLUMES);
        docker.docker(UP, DocCommands.PROD_UP).ok(DocCommands.PROD_UP);
        assertEquals(0, total(), "the count after down -v + up");
    }

    /** GET /api/visits (counts nothing): the total. */
    private static long total() throws Exception {
        HttpResponse<String> response = awaitStatus("/api/visits", 200);
        Matcher m = Pattern.compile("\"total\"\\s*:\\s*(\\d+)").matcher(response.body());
        assertTrue(m.find(), response.body());
        return Long.parseLong(m.group(1));
    }

    /** Polls every 100 ms; on a timeout, with the last answer. */
    private static HttpResponse<String> awaitStatus(String path, int status) {
        var last = new AtomicReference<HttpResponse<String>>();
        explained(() -> await(path + " to answer " + status, Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100))
                .until(() -> {
                    last.set(Http.get(base.resolve(path)));
                    return last.get().statusCode() == status;
                }), () -> "last: " + last.get().statusCode() + " " + last.get().body());
        return last.get();
    }

    private static List<String> appImages() {
        return List.of(registry + "/visit-counter-web:" + tag, registry + "/visit-counter-nginx:" + tag);
    }

    /** Debian's docker-registry on a free loopback port, storing into a temporary directory. */
    private static int startRegistry() throws Exception {
        int port = Ports.freeBlock(1);
        Path config = tmp.resolve("registry.yml");
        Files.writeString(config, """
                version: 0.1
                storage:
                  filesystem:
                    rootdirectory: %s
                http:
                  addr: 127.0.0.1:%d
                """.formatted(tmp.resolve("registry-data"), port));
        Path log = tmp.resolve("registry.log");
        registryProcess = Processes.start(List.of("docker-registry", "serve", config.toString()), Map.of(), log); // apt-get install docker-registry
        explained(() -> await("docker-registry to answer on port " + port, Duration.ofSeconds(30))
                .failFast("docker-registry on port " + port + " exited", () -> !registryProcess.isAlive())
                .ignoreExceptionsInstanceOf(IOException.class)
                .until(() -> Http.get(URI.create("http://127.0.0.1:" + port + "/v2/")).statusCode() == 200),
                () -> "its log: " + Files.readString(log));
        return port;
    }
}

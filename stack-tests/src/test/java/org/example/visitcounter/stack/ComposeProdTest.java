package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.example.visitcounter.stack.support.DocCommands;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.PageViews;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Project;
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
 * The production overlay on the real engine, with docs/production.md's commands: build, push to a
 * registry (Debian's docker-registry on loopback), and `up -d --wait` on a host that has to pull the
 * images; then what the overlay promises: the Redis password, read-only root file systems, non-root
 * users without capabilities, the rate limit, and the count surviving `down` + `up` but not `down -v`.
 */
@Tag("docker")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ComposeProdTest {
    private static final Duration UP = Duration.ofMinutes(3);
    private static final Duration COMMAND = Duration.ofSeconds(30);
    private static final Path SECRET = Project.root().resolve("secrets/redis_password.txt");

    @TempDir
    static Path tmp;

    private static ComposeStack stack;
    private static Registry registry;
    private static String tag;
    private static boolean secretCreatedHere;

    @BeforeAll
    static void prepare() throws Exception {
        registry = new Registry(tmp);
        tag = "prod-test-" + ProcessHandle.current().pid();
        stack = new ComposeStack(Map.of("COMPOSE_FILE", "compose.yaml:prod.compose.yaml",
                "REGISTRY", registry.address, "TAG", tag));
        if (!Files.exists(SECRET)) {
            // docs/production.md's step; a developer's own secret is used as it is and never touched.
            Processes.run(List.of("sh", "-c", "mkdir -p secrets && openssl rand -hex 32 > secrets/redis_password.txt"
                    + " && chmod 644 secrets/redis_password.txt")).ok("creating " + SECRET);
            secretCreatedHere = true;
        }
    }

    @AfterAll
    static void cleanUp() throws Exception {
        try {
            if (stack != null) {
                stack.close();
                stack.cli.docker(Duration.ofMinutes(1), "image rm --force " + String.join(" ", appImages()));
            }
        } finally {
            if (registry != null) {
                registry.close();
            }
            if (secretCreatedHere) {
                Files.deleteIfExists(SECRET);
            }
        }
    }

    @Test
    @Order(1)
    void buildPushAndAHostThatPulls() throws Exception {
        stack.docker(ComposeStack.BUILD_TIMEOUT, DocCommands.PROD_BUILD);
        stack.docker(ComposeStack.BUILD_TIMEOUT, DocCommands.PROD_PUSH);
        for (String image : appImages()) {
            String tags = registry.tags(image.substring(registry.address.length() + 1, image.lastIndexOf(':')));
            assertTrue(tags.contains('"' + tag + '"'), "the registry has " + image + ": " + tags);
            // The host has only what the registry gives it.
            stack.cli.run(Duration.ofMinutes(1), "image", "rm", image).ok("image rm " + image);
        }
        String up = stack.docker(UP, DocCommands.PROD_UP);
        for (String image : appImages()) {
            stack.cli.run(COMMAND, "image", "inspect", image).ok("pulled " + image + "; up said:\n" + up);
        }
        PageViews.assertStrictRotation(stack.uri("/"), 3);
    }

    @Test
    @Order(2)
    void redisRefusesAClientWithoutThePassword() throws Exception {
        String password = Files.readString(SECRET).strip();
        String anonymous = stack.cli.docker(COMMAND, DocCommands.PROD_FILES + "exec -T redis redis-cli ping").output();
        assertTrue(anonymous.contains("NOAUTH"), "redis-cli without the password: " + anonymous);
        String redis = stack.containers("redis").getFirst().id();
        assertFalse(stack.inspect(redis).toString().contains(password), "the password is in the container's configuration");
        assertTrue(stack.cli.run(COMMAND, "exec", "-e", "REDISCLI_AUTH=" + password, redis, "redis-cli", "ping")
                .ok("redis-cli with the password").output().contains("PONG"));
    }

    @Test
    @Order(3)
    void everyContainerIsReadOnlyUnprivilegedAndWithoutCapabilities() {
        Map<String, String> users = Map.of("web", "10001", "nginx", "101", "redis", "999");
        var containers = stack.ps(false);
        assertEquals(users.keySet(), containers.stream().map(ComposeStack.Container::service).collect(Collectors.toSet()));
        for (var c : containers) {
            assertEquals(ComposeStack.HARDENED, stack.hardening(c.id()), c.service() + " " + c.id());
            assertEquals(users.get(c.service()), stack.cli.run(COMMAND, "exec", c.id(), "id", "-u").ok("id -u").output()
                    .strip(), c.service() + "'s user");
            var write = stack.cli.run(COMMAND, "exec", c.id(), "sh", "-c", "echo x > /probe");
            assertNotEquals(0, write.status(), c.service() + " could write its root file system");
            assertTrue(write.output().contains("Read-only file system"), write.output());
        }
    }

    @Test
    @Order(4)
    void nginxLimitsTheRate() throws Exception {
        // The operational endpoints are hidden by the same nginx image: StackPromisesTest.
        // 20 requests/s with bursts of 40 per client (nginx/proxy.conf): 80 back to back run into the limit.
        Map<Integer, Integer> statuses = new TreeMap<>();
        for (int i = 0; i < 80; i++) {
            statuses.merge(Http.get(stack.uri("/api/visits")).statusCode(), 1, Integer::sum);
        }
        System.out.println("prod: 80 requests back to back, by status: " + statuses);
        assertEquals(Set.of(200, 429), statuses.keySet(), "200, then beyond the burst 429, and nothing else");
        assertTrue(statuses.get(200) >= 40, "the burst of 40 passes: " + statuses);
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
        stack.docker(UP, DocCommands.PROD_DOWN);
        stack.docker(UP, DocCommands.PROD_UP);
        assertEquals(before, total(), "the count after down + up");
        stack.docker(UP, DocCommands.PROD_DOWN_VOLUMES);
        stack.docker(UP, DocCommands.PROD_UP);
        assertEquals(0, total(), "the count after down -v + up");
    }

    /** GET /api/visits (counts nothing): the total. */
    private static long total() throws IOException {
        JsonNode total = new ObjectMapper().readTree(awaitStatus("/api/visits", 200).body()).path("total");
        assertTrue(total.isIntegralNumber(), "GET /api/visits has a total: " + total);
        return total.asLong();
    }

    /** Polls every 100 ms; returns the answer with that status (a timeout names the last one). */
    private static HttpResponse<String> awaitStatus(String path, int status) {
        return await(path + " to answer " + status, COMMAND).pollInterval(Duration.ofMillis(100))
                .until(() -> Http.get(stack.uri(path)), response -> response.statusCode() == status);
    }

    private static List<String> appImages() {
        return List.of(registry.address + "/visit-counter-web:" + tag, registry.address + "/visit-counter-nginx:" + tag);
    }
}

package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.example.visitcounter.stack.support.DocCommands;
import org.example.visitcounter.stack.support.LoadClient;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Redis at its maxmemory under load, on the engine: prod.compose.yaml's eviction policy with a maxmemory
 * the dedupe markers fill. Redis must evict markers, never the total or the tallies, never refuse a count
 * (no 5xx beyond the documented 503), and never die.
 */
@Tag("docker")
class RedisMaxmemoryTest {
    /**
     * Counts before maxmemory is set to what Redis then holds, and again after its first eviction:
     * the markers of these many requests are what Redis can evict (docs/redis-memory.md).
     */
    private static final long COUNTS = 2000;
    /** Even a slow, shared machine counts a few hundred visits a second. */
    private static final Duration DEADLINE = Duration.ofSeconds(90);
    private static final int CONNECTIONS = 16;

    @TempDir
    Path tmp;

    @Test
    void atMaxmemoryRedisEvictsMarkersOnlyAndKeepsCountingExactly() throws Exception {
        String policy = shippedPolicy();
        Path overlay = tmp.resolve("maxmemory.compose.yaml");
        // compose.yaml's stack (prod's rate limit would turn the load into 429s) with prod's policy.
        Files.writeString(overlay, """
                services:
                  redis:
                    command: ["redis-server", "--maxmemory-policy", "%s"]
                """.formatted(policy));
        try (var stack = ComposeStack.up(DocCommands.UP, Map.of("COMPOSE_FILE", "compose.yaml:" + overlay))) {
            String redis = stack.containers("redis").getFirst().id();
            String startedBefore = stack.incarnation(redis);
            long totalBefore = stack.redisTotal();

            long start = System.nanoTime();
            long maxmemory;
            LoadClient.Result run;
            try (var load = LoadClient.start(stack.uri("/"), CONNECTIONS)) {
                // Under load, so that the clients' connections and buffers are already in used_memory:
                // from here on, every new marker needs another one evicted.
                await(COUNTS + " counts", DEADLINE).until(() -> stack.redisTotal() >= totalBefore + COUNTS);
                maxmemory = Long.parseLong(info(stack, redis).getProperty("used_memory"));
                stack.cli.run(ComposeStack.COMMAND_TIMEOUT, "exec", redis, "redis-cli", "config", "set", "maxmemory",
                        Long.toString(maxmemory)).ok("config set maxmemory");
                await("Redis to reach maxmemory " + maxmemory + " and evict", DEADLINE).pollInterval(Duration.ofMillis(500))
                        .until(() -> Long.parseLong(info(stack, redis).getProperty("evicted_keys", "0")) > 0);
                long atFirstEviction = stack.redisTotal();
                await(COUNTS + " more counts at maxmemory", DEADLINE).until(() -> stack.redisTotal() >= atFirstEviction + COUNTS);
                run = load.stop();
            }
            Properties stats = info(stack, redis);
            long total = stack.redisTotal();
            long seconds = Duration.ofNanos(System.nanoTime() - start).toSeconds();
            System.out.printf("maxmemory %d %s, %d s of load: %d requests, %d x 2xx, failures %s;"
                    + " evicted_keys %s, used_memory %s%n", maxmemory, policy, seconds, run.samples().size(), run.ok(),
                    run.failuresByStatus(), stats.get("evicted_keys"), stats.get("used_memory"));

            assertEquals(startedBefore, stack.incarnation(redis), "Redis was not restarted (nor OOM-killed)");
            assertTrue(run.failures().stream().allMatch(s -> s.status() == 503 && s.retryAfter() != null),
                    "only the documented 503 + Retry-After: " + run.failuresByStatus());
            assertTrue(run.ok() > 0, "the load got answers");
            assertEquals(totalBefore + run.ok(), total, "the total grew by exactly the 2xx the clients saw");
            assertEquals(0, run.duplicateCounts(), "no two visits got the same number");
            long tallies = stack.cli.run(ComposeStack.COMMAND_TIMEOUT, "exec", redis, "redis-cli", "hvals", "{visits}:by-replica")
                    .ok("hvals").output().lines().mapToLong(Long::parseLong).sum();
            assertEquals(total, tallies, "the tallies are all there and add up to the total");
        }
    }

    /** prod.compose.yaml's --maxmemory-policy: this test checks the policy that ships. */
    private static String shippedPolicy() throws IOException {
        Matcher m = Pattern.compile("- --maxmemory-policy\\n\\s*- (\\S+)")
                .matcher(Files.readString(Project.root().resolve("prod.compose.yaml")));
        assertTrue(m.find(), "prod.compose.yaml sets --maxmemory-policy");
        return m.group(1);
    }

    /** Redis's INFO: key:value lines, which java.util.Properties reads. */
    private static Properties info(ComposeStack stack, String redis) throws IOException {
        var info = new Properties();
        info.load(new StringReader(stack.cli.run(ComposeStack.COMMAND_TIMEOUT, "exec", redis, "redis-cli", "info",
                "everything").ok("redis-cli info").output()));
        return info;
    }
}

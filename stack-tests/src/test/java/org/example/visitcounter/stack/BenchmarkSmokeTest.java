package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * bench/run.sh, docs/performance.md's bench/compare.sh example and bench/redis-memory.sh, end to end, with every phase cut to
 * seconds: the figures mean nothing, but the scripts must still start, load, measure and stop
 * everything, and print their whole tables. Of the peers, only Express runs here (npm ci and three
 * node processes: seconds); the Spring Boot peer's build and start-ups would add a minute or two to
 * every CI run, so it is left to the real runs (bench/run.sh's default PEERS).
 */
@Tag("loopback")
class BenchmarkSmokeTest {
    /** Each script's whole run, its phases cut to seconds. */
    private static final Duration LIMIT = Duration.ofMinutes(5);

    @Test
    void theBenchmarkRunsEndToEndAndPrintsItsTable() {
        assumeTrue(Runtime.version().feature() >= 25, "the benchmark needs JDK 25 (AOT cache)");
        String output = Processes.run(LIMIT, List.of("bash", Project.root().resolve("bench/run.sh").toString()),
                LocalStack.scriptEnvironment(Map.of("RUNS", "1", "DURATION", "2", "WARMUP", "2", "REDIS_REQUESTS", "5000",
                        "PEERS", "express", "BASE_PORT", Integer.toString(Ports.freeBlock(45))))).ok("bench/run.sh").output();
        for (String row : List.of("| ours: requests/s", "| proxy ceiling:", "| **ours / proxy ceiling** |",
                "| Redis ceiling:", "| **latency p99, ms** |", "| CPU µs per request:",
                "| **RSS per replica after the load, MiB**", "| **ours / default flags, throughput** |",
                "| **start to first 200, ms** (AOT cache) |", "| **first 10 s / steady state** |",
                "| peer express: requests/s |", "| **ours / the faster peer (express)** |")) {
            assertTrue(output.contains(row), "missing row " + row + " in:\n" + output);
        }
        assertTrue(output.contains("**yes** | yes |"), "the correctness line holds:\n" + output);
        assertTrue(!output.contains("n/a"), "every figure was measured:\n" + output);
    }

    @Test
    void theDocumentedComparisonRunsEndToEnd() throws Exception {
        String command = Files.readAllLines(Project.root().resolve("docs/performance.md")).stream()
                .filter(line -> line.startsWith("$ bench/compare.sh ")).findFirst().orElseThrow().substring(2);
        String output = Processes.run(LIMIT, List.of("bash", "-c", command), LocalStack.scriptEnvironment(
                Map.of("ROUNDS", "1", "DURATION", "2", "WARMUP", "2", "BASE_PORT", Integer.toString(Ports.freeBlock(20)))))
                .ok(command).output();
        // One row per variant named in the command, each without errors, then their resident sizes.
        List<String> variants = Pattern.compile("(?<=\\s)([A-Za-z0-9_-]+) '[^']*'").matcher(command)
                .results().map(m -> m.group(1)).toList();
        assertEquals(2, variants.size(), command);
        for (String variant : variants) {
            assertTrue(Pattern.compile("(?m)^\\| 1 \\| " + variant + " \\| \\d+ \\|.*\\| 0 \\|$")
                    .matcher(output).find(), "a round of " + variant + " without errors in:\n" + output);
            assertTrue(output.contains(variant + ": RSS per replica after the load, MiB: "), output);
        }
    }

    @Test
    void theMemoryBenchmarkRunsEndToEndAndPrintsItsTable() throws Exception {
        String command = Files.readAllLines(Project.root().resolve("docs/redis-memory.md")).stream()
                .filter(line -> line.startsWith("$ bench/redis-memory.sh")).findFirst().orElseThrow()
                .substring(2).replaceFirst("\\s+#.*$", "");
        String output = Processes.run(LIMIT, List.of("bash", "-c", command), LocalStack.scriptEnvironment(
                Map.of("DURATION", "4", "DEDUPE_WINDOW_SECONDS", "3", "BASE_PORT", Integer.toString(Ports.freeBlock(5)))))
                .ok(command).output();
        for (int after : List.of(4, 8)) { // | after | used_memory, MB | keys | requests counted in the window | B each |
            var row = Pattern.compile("(?m)^\\| " + after + " s \\| [0-9.]+ \\| \\d+ \\| [1-9]\\d* \\| \\d+ \\|$");
            assertTrue(row.matcher(output).find(),
                    "a reading after " + after + " s, with requests counted in its window, in:\n" + output);
        }
        assertTrue(output.contains("Idle Redis: "), output);
    }
}

package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bench/run.sh, and docs/performance.md's bench/compare.sh example, end to end, with every phase cut to
 * seconds: the figures mean nothing, but the scripts must still start, load, measure and stop
 * everything, and print their whole tables. Keeps the benchmark from rotting between the runs
 * that matter.
 */
@Tag("loopback")
class BenchmarkSmokeTest {
    private static final long LIMIT_SECONDS = 300;

    @Test
    void theBenchmarkRunsEndToEndAndPrintsItsTable(@TempDir Path tmp) throws Exception {
        assumeTrue(Runtime.version().feature() >= 25, "the benchmark needs JDK 25 (AOT cache)");
        Path root = Project.root();
        Path out = tmp.resolve("bench.out");
        var builder = new ProcessBuilder("bash", root.resolve("bench/run.sh").toString())
                .redirectErrorStream(true)
                .redirectOutput(out.toFile());
        builder.environment().putAll(LocalStack.cleanEnvironment());
        builder.environment().putAll(java.util.Map.of("RUNS", "1", "DURATION", "2", "WARMUP", "2",
                "REDIS_REQUESTS", "5000", "BASE_PORT", Integer.toString(Ports.freeBlock(40))));
        Process bench = builder.start();
        try {
            assertTrue(bench.waitFor(LIMIT_SECONDS, TimeUnit.SECONDS), "bench/run.sh ran over " + LIMIT_SECONDS + " s");
        } finally {
            bench.destroy(); // SIGTERM: the script stops what it started
            bench.waitFor(60, TimeUnit.SECONDS);
        }
        String output = Files.readString(out, StandardCharsets.UTF_8);
        assertEquals(0, bench.exitValue(), output);
        for (String row : List.of("| ours: requests/s", "| proxy ceiling:", "| **ours / proxy ceiling** |",
                "| Redis ceiling:", "| **latency p99, ms** |", "| CPU µs per request:",
                "| **RSS per replica after the load, MiB**", "| **ours / default flags, throughput** |",
                "| **start to first 200, ms** (AOT cache) |", "| **first 10 s / steady state** |")) {
            assertTrue(output.contains(row), "missing row " + row + " in:\n" + output);
        }
        assertTrue(output.contains("**yes** | yes |"), "the correctness line holds:\n" + output);
        assertTrue(!output.contains("n/a"), "every figure was measured:\n" + output);
    }

    @Test
    void theDocumentedComparisonRunsEndToEnd(@TempDir Path tmp) throws Exception {
        Path root = Project.root();
        String command = Files.readAllLines(root.resolve("docs/performance.md")).stream()
                .filter(line -> line.startsWith("$ bench/compare.sh ")).findFirst().orElseThrow()
                .substring(2);
        Path out = tmp.resolve("compare.out");
        var builder = new ProcessBuilder("bash", "-c", command)
                .directory(root.toFile())
                .redirectErrorStream(true)
                .redirectOutput(out.toFile());
        builder.environment().putAll(LocalStack.cleanEnvironment());
        builder.environment().putAll(java.util.Map.of("ROUNDS", "1", "DURATION", "2", "WARMUP", "2",
                "BASE_PORT", Integer.toString(Ports.freeBlock(20))));
        Process compare = builder.start();
        try {
            assertTrue(compare.waitFor(LIMIT_SECONDS, TimeUnit.SECONDS), command + " ran over " + LIMIT_SECONDS + " s");
        } finally {
            compare.destroy(); // SIGTERM: the script stops what it started
            compare.waitFor(60, TimeUnit.SECONDS);
        }
        String output = Files.readString(out, StandardCharsets.UTF_8);
        assertEquals(0, compare.exitValue(), output);
        // One row per variant named in the command, each without errors, then their resident sizes.
        List<String> variants = java.util.regex.Pattern.compile("(?<=\\s)([A-Za-z0-9_-]+) '[^']*'").matcher(command)
                .results().map(m -> m.group(1)).toList();
        assertEquals(2, variants.size(), command);
        for (String variant : variants) {
            assertTrue(java.util.regex.Pattern.compile("(?m)^\\| 1 \\| " + variant + " \\| \\d+ \\|.*\\| 0 \\|$")
                    .matcher(output).find(), "a round of " + variant + " without errors in:\n" + output);
            assertTrue(output.contains(variant + ": RSS per replica after the load, MiB: "), output);
        }
    }
}

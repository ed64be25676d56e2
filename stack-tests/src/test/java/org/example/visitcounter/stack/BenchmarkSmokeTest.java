package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bench/run.sh end to end, with every phase cut to seconds: the figures mean nothing, but the
 * script must still start, load, measure and stop everything, and print its whole table with a
 * correctness line that holds. Keeps the benchmark from rotting between the runs that matter.
 */
class BenchmarkSmokeTest {
    private static final long LIMIT_SECONDS = 300;

    @Test
    void theBenchmarkRunsEndToEndAndPrintsItsTable(@TempDir Path tmp) throws Exception {
        assumeTrue(Runtime.version().feature() >= 25, "the benchmark needs JDK 25 (AOT cache)");
        Path root = LocalStack.projectRoot();
        Path out = tmp.resolve("bench.out");
        var builder = new ProcessBuilder("bash", root.resolve("bench/run.sh").toString())
                .redirectErrorStream(true)
                .redirectOutput(out.toFile());
        builder.environment().putAll(LocalStack.cleanEnvironment());
        builder.environment().putAll(java.util.Map.of("RUNS", "1", "DURATION", "2", "WARMUP", "2",
                "REDIS_REQUESTS", "5000", "BASE_PORT", Integer.toString(LocalStack.freePortBlock(40))));
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
}

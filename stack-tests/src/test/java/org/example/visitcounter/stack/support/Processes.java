package org.example.visitcounter.stack.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Commands in the repository root, stdin at its end: run to their end with a deadline ({@link #run}),
 * or started to run on in the background ({@link #start}). The tests' one ProcessBuilder.
 */
public final class Processes {
    private Processes() {}

    /** What a command exited with and printed. */
    public record Outcome(int status, String stdout, String stderr) {
        /** Both streams, stderr after stdout, for messages. */
        public String output() {
            return stdout + (stderr.isEmpty() ? "" : (stdout.isEmpty() ? "" : "\n") + stderr);
        }

        /** Fails the test unless the command exited 0. */
        public Outcome ok(String what) {
            assertEquals(0, status, () -> what + " failed:\n" + output());
            return this;
        }
    }

    /** Short commands (kill, cp, getconf): 30 s at most, the test's own environment. */
    public static Outcome run(List<String> command) {
        return run(Duration.ofSeconds(30), command, Map.of());
    }

    /**
     * Skips the calling test where {@code command} (a tool's version, say) does not exit 0, except
     * in CI (CI=true), where every test must run: there a missing tool fails the test.
     */
    public static void assumeTool(String why, String... command) {
        boolean runs;
        try {
            runs = run(List.of(command)).status() == 0;
        } catch (UncheckedIOException e) {
            runs = false;
        }
        if (!runs && "true".equals(System.getenv("CI"))) {
            fail(command[0] + " is missing, and in CI every test must run (" + why + ")");
        }
        assumeTrue(runs, command[0] + " is not installed (" + why + ")");
    }

    /**
     * Runs {@code command} with stdin at its end, the environment changed by {@code env} (a
     * null value removes the variable), and fails the test if it takes longer than {@code timeout}
     * (after a SIGTERM, then a SIGKILL a minute later).
     */
    public static Outcome run(Duration timeout, List<String> command, Map<String, String> env) {
        try {
            Path out = Files.createTempFile("process-", ".out");
            Path err = Files.createTempFile("process-", ".err");
            try {
                Process process = builder(command, env).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
                if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.destroy(); // SIGTERM first: a script stops what it started
                    if (!process.waitFor(60, TimeUnit.SECONDS)) {
                        process.destroyForcibly().waitFor();
                    }
                    fail(String.join(" ", command) + " did not finish within " + timeout + ":\n"
                            + Files.readString(out) + Files.readString(err));
                }
                return new Outcome(process.exitValue(), Files.readString(out), Files.readString(err));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + String.join(" ", command), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /**
     * Starts {@code command} with the environment changed by {@code env} (as {@link #run}), both its
     * streams appended to {@code log}; the caller stops it.
     */
    public static Process start(List<String> command, Map<String, String> env, Path log) {
        try {
            return builder(command, env).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + String.join(" ", command), e);
        }
    }

    private static ProcessBuilder builder(List<String> command, Map<String, String> env) {
        var builder = new ProcessBuilder(command).directory(Project.root().toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        env.forEach((name, value) -> builder.environment().compute(name, (n, old) -> value)); // null: removed
        return builder;
    }
}

package org.example.visitcounter.stack.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The docker CLI as a user runs it: the commands README.md shows, word for word, in the
 * repository root, with the caller's environment (which may point the base images elsewhere:
 * JDK_IMAGE, ... see scripts/offline-docker.sh) plus a few settings of the test's own, such as
 * COMPOSE_PROJECT_NAME and HTTP_PORT, so that a test never touches a stack a developer runs.
 */
public final class DockerCli {
    public record Result(int exit, String output) {
        public Result ok(String what) {
            assertEquals(0, exit, what + " failed:\n" + output);
            return this;
        }
    }

    private final Map<String, String> env;

    public DockerCli(Map<String, String> env) {
        this.env = Map.copyOf(env);
    }

    /**
     * Skips the calling test where no Docker engine answers, except in CI (CI=true), where every
     * Docker test must run: there a missing engine fails the test.
     */
    public static void assumeEngine() {
        boolean answers;
        try {
            answers = new DockerCli(Map.of()).run(Duration.ofSeconds(20), "info").exit() == 0;
        } catch (RuntimeException e) {
            answers = false;
        }
        if (!answers && "true".equals(System.getenv("CI"))) {
            fail("no Docker engine answers, and in CI every Docker test must run: "
                    + "scripts/offline-docker.sh all (see README.md, Tests)");
        }
        assumeTrue(answers, "no Docker engine answers `docker info`");
    }

    /** {@code docker} with these words (split on blanks), e.g. "compose up --build -d --wait". */
    public Result docker(Duration timeout, String commandLine) {
        return run(timeout, commandLine.strip().split("\\s+"));
    }

    public Result run(Duration timeout, String... words) {
        try {
            Path log = Files.createTempFile("docker-", ".log");
            try {
                // A short command reads nothing: stdin at its end from the start.
                Process process = builder(log, words)
                        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
                if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.destroyForcibly().waitFor();
                    fail("docker " + String.join(" ", words) + " did not finish within " + timeout + ":\n"
                            + Files.readString(log));
                }
                return new Result(process.exitValue(), Files.readString(log));
            } finally {
                Files.deleteIfExists(log);
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot run docker " + String.join(" ", words), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Starts a long-running docker command (compose watch), its output to {@code log}. */
    public Process start(Path log, String commandLine) throws IOException {
        return builder(log, commandLine.strip().split("\\s+")).start();
    }

    private ProcessBuilder builder(Path log, String... words) {
        List<String> command = new ArrayList<>(List.of("docker"));
        command.addAll(Arrays.asList(words));
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(Project.root().toFile())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile());
        builder.environment().putAll(env);
        return builder;
    }

    /** The environment of a throw-away Compose project: its own name and a free nginx port. */
    public static Map<String, String> projectEnv(String name, int httpPort) {
        Map<String, String> env = new HashMap<>();
        env.put("COMPOSE_PROJECT_NAME", name);
        env.put("HTTP_PORT", Integer.toString(httpPort));
        return env;
    }
}

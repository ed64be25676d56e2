package org.example.visitcounter.stack.support;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.example.visitcounter.stack.support.Processes.Outcome;

/**
 * The docker CLI as a user runs it, in the repository root, with the caller's environment (which may
 * point the base images elsewhere: scripts/offline-docker.sh) plus the test's own settings, such as
 * COMPOSE_PROJECT_NAME and HTTP_PORT, so that a test never touches a stack a developer runs.
 */
public final class DockerCli {
    private final Map<String, String> env;

    public DockerCli(Map<String, String> env) {
        this.env = Map.copyOf(env);
    }

    /** Skips the calling test where no Docker engine answers {@code docker info}; in CI (CI=true) fails it. */
    public static void assumeEngine() {
        Processes.assumeTool("no engine answers `docker info`; see docs/testing.md", "docker", "info");
    }

    /** {@code docker} with these words (split on blanks), e.g. "compose up --build -d --wait". */
    public Outcome docker(Duration timeout, String commandLine) {
        return run(timeout, commandLine.strip().split("\\s+"));
    }

    public Outcome run(Duration timeout, String... words) {
        return Processes.run(timeout, command(words), env);
    }

    /** Starts a long-running docker command (compose watch), its output to {@code log}. */
    public Process start(Path log, String commandLine) {
        return Processes.start(command(commandLine.strip().split("\\s+")), env, log);
    }

    private static List<String> command(String... words) {
        return Stream.concat(Stream.of("docker"), Arrays.stream(words)).toList();
    }
}

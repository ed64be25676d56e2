package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.example.visitcounter.RedisVisits;
import org.example.visitcounter.stack.support.DocCommands;
import org.example.visitcounter.stack.support.DockerCli;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Waits;

/**
 * compose.yaml (and any overlay) on a real Docker engine, driven by the commands the docs show
 * ({@link DocCommands}) under a throw-away project name and a free loopback port, so a stack a
 * developer runs (visit-counter, 8080) is never touched. State is read from Docker's JSON, never
 * from its columns. {@link #close()} removes the project, its volume and the images it built.
 */
final class ComposeStack implements Stack {
    /** The first build compiles the app and trains the AOT cache inside the image build; later ones hit the cache. */
    static final Duration BUILD_TIMEOUT = Duration.ofMinutes(15);
    static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(2);
    /** A (re)started replica reports healthy once /readyz answers (compose.yaml: healthcheck start_interval 1s). */
    static final Duration HEALTHY_DEADLINE = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One container of the project. id: the short id, which is the replica's host name and X-Served-By. */
    record Container(String id, String name, String service, String state, String health) {}

    final String project;
    final DockerCli cli;
    final int port;
    private final Map<String, String> restartsAtKill = new HashMap<>();

    /** A throw-away project, nothing started yet; {@code env}, e.g. an overlay's COMPOSE_FILE, is for every command. */
    ComposeStack(Map<String, String> env) {
        DockerCli.assumeEngine();
        this.project = "vc-" + UUID.randomUUID().toString().substring(0, 8);
        this.port = Ports.freeBlock(1);
        var all = new HashMap<>(env);
        all.putAll(Map.of("COMPOSE_PROJECT_NAME", project, "HTTP_PORT", Integer.toString(port)));
        this.cli = new DockerCli(all);
    }

    /** A new project brought up by {@code command}, e.g. {@link DocCommands#DEV_UP}; closed again if it fails. */
    static ComposeStack up(String command, Map<String, String> env) {
        var stack = new ComposeStack(env);
        long start = System.nanoTime();
        try {
            stack.docker(BUILD_TIMEOUT, command);
        } catch (AssertionError e) {
            var why = new AssertionError(e.getMessage() + "\n" + stack.diagnosis() + "\n"
                    + stack.cli.docker(COMMAND_TIMEOUT, "compose logs --tail 30").output(), e);
            stack.close();
            throw why;
        }
        System.out.printf("%s: %d ms (project %s, port %d)%n", command, (System.nanoTime() - start) / 1_000_000,
                stack.project, stack.port);
        return stack;
    }

    /** {@code docker} with these words, e.g. {@link DocCommands#DOWN}; fails unless it exits 0. Returns its output. */
    String docker(Duration timeout, String command) {
        return cli.docker(timeout, command).ok(command).output();
    }

    @Override
    public URI uri(String path) {
        return URI.create("http://127.0.0.1:" + port + path);
    }

    /** {@code docker compose ps --format json}: one JSON object per line (Compose 2.21 and later). */
    List<Container> ps(boolean all) {
        String out = cli.docker(COMMAND_TIMEOUT, "compose ps --format json" + (all ? " -a" : "")).ok("compose ps").stdout();
        return out.lines().filter(l -> l.startsWith("{")).map(l -> json("compose ps", l))
                .map(c -> new Container(c.path("ID").asText().substring(0, 12), c.path("Name").asText(),
                        c.path("Service").asText(), c.path("State").asText(), c.path("Health").asText()))
                .toList();
    }

    List<Container> containers(String service) {
        return ps(false).stream().filter(c -> c.service().equals(service) && c.state().equals("running")).toList();
    }

    @Override
    public List<String> replicas() {
        return containers("web").stream().map(Container::id).sorted().toList();
    }

    JsonNode inspect(String container) {
        String out = cli.run(COMMAND_TIMEOUT, "inspect", container).ok("docker inspect").stdout();
        return json("docker inspect " + container, out).get(0);
    }

    /** The prod overlay's hardening as {@link #hardening} reads it: read-only root, no capabilities, no-new-privileges. */
    static final String HARDENED = "true [\"ALL\"] [\"no-new-privileges:true\"]";

    String hardening(String container) {
        JsonNode host = inspect(container).path("HostConfig");
        return host.path("ReadonlyRootfs") + " " + host.path("CapDrop") + " " + host.path("SecurityOpt");
    }

    /** Changes if the container is recreated, restarted, or killed for memory: its id, start, restarts, OOMKilled. */
    String incarnation(String container) {
        var c = inspect(container);
        return c.path("Id").asText() + " " + c.at("/State/StartedAt").asText() + " " + c.path("RestartCount")
                + " " + c.at("/State/OOMKilled");
    }

    private static JsonNode json(String what, String text) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            throw new AssertionError(what + ": " + text, e);
        }
    }

    /** An operator's stop: Docker disables the restart policy (docker-kill(1)); {@link #startReplica} checks it. */
    @Override
    public void killReplica(String name) {
        restartsAtKill.put(name, inspect(name).path("RestartCount").asText());
        cli.run(COMMAND_TIMEOUT, "kill", name).ok("docker kill " + name);
    }

    @Override
    public void startReplica(String name) {
        JsonNode state = inspect(name);
        assertEquals("exited/137/" + restartsAtKill.remove(name), state.at("/State/Status").asText() + "/"
                + state.at("/State/ExitCode").asText() + "/" + state.path("RestartCount").asText(),
                name + " after docker kill (status/exit code/restart count): `restart: unless-stopped` does not apply to docker kill");
        cli.run(COMMAND_TIMEOUT, "start", name).ok("docker start " + name);
        awaitHealthy(name);
    }

    void awaitHealthy(String container) {
        Waits.explained(() -> await(container + " healthy", HEALTHY_DEADLINE).pollInterval(Duration.ofMillis(250))
                .until(() -> {
                    JsonNode s = inspect(container).path("State");
                    return s.path("Status").asText().equals("running") && s.at("/Health/Status").asText().equals("healthy");
                }), () -> "its state: " + inspect(container).path("State") + "\nits last log lines:\n"
                        + cli.run(COMMAND_TIMEOUT, "logs", "--tail", "40", container).output());
    }

    @Override
    public void stopRedis() {
        docker(COMMAND_TIMEOUT, "compose stop redis");
    }

    @Override
    public void startRedis() {
        docker(COMMAND_TIMEOUT, "compose start redis");
    }

    /** {@code docker compose down}, which keeps the volumes, then up again. */
    @Override
    public void restartKeepingData() {
        docker(COMMAND_TIMEOUT, DocCommands.DOWN);
        docker(BUILD_TIMEOUT, DocCommands.UP_AGAIN);
    }

    @Override
    public long redisTotal() {
        String value = cli.docker(COMMAND_TIMEOUT, "compose exec -T redis redis-cli GET " + RedisVisits.TOTAL_KEY)
                .ok("redis-cli GET").stdout().strip();
        return value.isEmpty() ? 0 : Long.parseLong(value);
    }

    /** The machine's state for a failure message: compose ps and the load average (2 shared cores). */
    String diagnosis() {
        return "compose ps: " + ps(true) + "\nuptime: " + Processes.run(List.of("uptime")).output().strip();
    }

    @Override
    public void close() {
        // --rmi local: only the images the build tagged with the project's name, none with an image: tag.
        var down = cli.docker(COMMAND_TIMEOUT, DocCommands.DOWN_VOLUMES + " --rmi local");
        if (down.status() != 0) {
            System.out.println("removing " + project + " failed (exit " + down.status() + "):\n" + down.output());
        }
    }
}

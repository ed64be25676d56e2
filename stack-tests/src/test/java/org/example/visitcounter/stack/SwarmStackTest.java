package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.ComposeStack.BUILD_TIMEOUT;
import static org.example.visitcounter.stack.ComposeStack.COMMAND_TIMEOUT;
import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;
import org.example.visitcounter.RedisVisits;
import org.example.visitcounter.stack.support.DockerCli;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.LoadClient.Run;
import org.example.visitcounter.stack.support.LoadClient.Sample;
import org.example.visitcounter.stack.support.LoadClient.Scenario;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Processes.Outcome;
import org.example.visitcounter.stack.support.Project;
import org.example.visitcounter.stack.support.Waits;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The production stack on a single-node Docker Swarm, as docs/swarm.md deploys it: the prod images
 * built by Compose, then {@code scripts/swarm-stack.sh deploy}. Images are tagged
 * {@code swarm-test.invalid/...}: Swarm's pull before each task start fails at once on the reserved
 * domain, and the local image runs.
 *
 * <p>Strict rotation is asserted in {@link StackPromisesTest}; here, that each task is served.
 */
@Tag("docker")
class SwarmStackTest {
    private static final int REPLICAS = 3;
    /** From `docker stack deploy` until nginx serves every replica (web's start_period is 30 s). */
    private static final Duration DEPLOY_DEADLINE = Duration.ofMinutes(3);
    /** Three tasks replaced one at a time, each started and healthy before its predecessor stops. */
    private static final Duration UPDATE_TIMEOUT = Duration.ofMinutes(5);
    /** nginx re-resolves `web` every second (upstream.conf.template); room for a loaded 2-core machine. */
    private static final Duration RESOLVE_DEADLINE = Duration.ofSeconds(30);
    /** `docker stack rm` returns at once; Swarm removes the containers and networks afterwards. */
    private static final Duration REMOVE_DEADLINE = Duration.ofMinutes(2);
    /** 10 requests/s: half of prod's per-client limit of 20 r/s (nginx/proxy.conf). */
    private static final Duration PACE = Duration.ofMillis(100);
    private static final Duration POLL = Duration.ofMillis(250);

    private String stack;
    private String label;
    private DockerCli cli;
    private List<String> images = List.of();
    private boolean initialized;
    private boolean gwbridgeExisted;

    @Test
    void deployServeAndRollingUpdateWithoutAFailedRequest(@TempDir Path tmp) throws Exception {
        DockerCli.assumeEngine();
        Processes.assumeTool("scripts/swarm-stack.sh needs it", "jq", "--version");
        String id = Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 16);
        stack = "vcswarmtest" + id;
        label = "label=com.docker.stack.namespace=" + stack;
        int port = Ports.freeBlock(1);
        var env = Map.of("REGISTRY", "swarm-test.invalid", "TAG", "swarm-test-" + id, "HTTP_PORT", "" + port);
        cli = new DockerCli(env);
        images = Stream.of("web", "nginx").map(s -> "swarm-test.invalid/visit-counter-" + s + ":" + env.get("TAG")).toList();
        URI base = URI.create("http://127.0.0.1:" + port);
        String password = "swarm-test-" + Long.toHexString(ThreadLocalRandom.current().nextLong());
        String overlay = testOverlay(tmp, password).toString();

        gwbridgeExisted = docker("network inspect docker_gwbridge").status() == 0;
        initialized = joinSwarm();
        try {
            cli.run(BUILD_TIMEOUT, "compose", "-f", "compose.yaml", "-f", "prod.compose.yaml", "-f", overlay, "build")
                    .ok("building the prod images");
            // The images exist on this node only: no registry to resolve their digests against.
            Processes.run(COMMAND_TIMEOUT, List.of(Project.root().resolve("scripts/swarm-stack.sh").toString(),
                    "-f", overlay, "deploy", stack, "--resolve-image", "never"), env).ok("scripts/swarm-stack.sh deploy");
            Set<String> replicas = awaitDeployed(base);

            String web = inspect(stack + "_web", "{{.Spec.EndpointSpec.Mode}} {{.Spec.UpdateConfig.Order}}"
                    + " {{.Spec.Mode.Replicated.Replicas}}");
            assertEquals("dnsrr start-first " + REPLICAS, web, "web's endpoint mode, update order and replicas");
            // The three web tasks (and no other), nginx and redis: one line each.
            String all = String.join(" ", lines(docker("ps -q --filter " + label).ok("docker ps").output()));
            List<String> hardening = lines(docker("inspect --format {{.Name}}:{{.HostConfig.ReadonlyRootfs}}:"
                    + "{{.HostConfig.CapDrop}} " + all).ok("docker inspect").output());
            assertEquals(REPLICAS + 2, hardening.size(), "the stack's containers: " + hardening);
            assertTrue(hardening.stream().allMatch(h -> h.endsWith(":true:[ALL]")),
                    "read-only root file system, every capability dropped: " + hardening);
            String ports = inspect(stack + "_nginx",
                    "{{range .Endpoint.Ports}}{{.PublishMode}}:{{.PublishedPort}}->{{.TargetPort}} {{end}}");
            assertEquals("host:" + port + "->8080", ports, "nginx's one port (prod's !override), host mode");

            redisRefusesAClientWithoutThePassword(password);
            rollingUpdateUnderLoad(base, replicas);
        } catch (Throwable t) {
            System.out.println("docker stack ps " + stack + ":\n" + docker("stack ps --no-trunc " + stack).output()
                    + "\nnginx's last log lines:\n" + docker("service logs --raw --tail 30 " + stack + "_nginx").output());
            throw t;
        }
    }

    /** Init a single-node swarm unless the engine is in one; true if this test made it. */
    private boolean joinSwarm() {
        String state = docker("info --format {{.Swarm.LocalNodeState}}").ok("docker info").output().strip();
        if (state.equals("inactive")) {
            docker("swarm init --advertise-addr 127.0.0.1").ok("docker swarm init");
            return true;
        }
        assertEquals("active", state, "the engine's swarm is in state " + state);
        // The images are on this node only: tasks must not land on another.
        assertEquals("true/1", docker("info --format {{.Swarm.ControlAvailable}}/{{.Swarm.Nodes}}").ok("docker info")
                .output().strip(), "the engine is in a swarm, but not as the manager of a single-node swarm");
        return false;
    }

    /**
     * The test's last -f file: the temporary secret; and where the kernel lacks IPVS, which Swarm's virtual
     * IPs need (the engine is local: its kernel is this one), redis in dnsrr mode, as docs/swarm.md advises.
     */
    private static Path testOverlay(Path tmp, String password) throws IOException {
        Path secret = Files.writeString(tmp.resolve("redis_password.txt"), password + "\n");
        String yaml = "secrets:\n  redis_password:\n    file: " + secret.toAbsolutePath() + "\n";
        if (!kernelHasIpvs()) {
            System.out.println("SwarmStackTest: kernel without IPVS: redis endpoint_mode dnsrr");
            yaml += "services:\n  redis:\n    deploy:\n      endpoint_mode: dnsrr\n";
        }
        return Files.writeString(tmp.resolve("swarm-test.compose.yaml"), yaml);
    }

    /** IPVS loaded or built in, or a loadable module for the running kernel. */
    private static boolean kernelHasIpvs() throws IOException {
        Path modules = Path.of("/lib/modules", Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip());
        for (Path index : List.of(modules.resolve("modules.builtin"), modules.resolve("modules.dep"))) {
            if (Files.isRegularFile(index) && Files.readString(index).contains("/ip_vs.ko")) {
                return true;
            }
        }
        return Files.exists(Path.of("/sys/module/ip_vs"));
    }

    /** Polls until nginx has served three running web tasks (a 200 needs Redis too); returns them. */
    private Set<String> awaitDeployed(URI base) {
        Set<String> seen = new TreeSet<>();
        awaitOrExplain("the stack to serve every replica through nginx", DEPLOY_DEADLINE, () -> {
            HttpResponse<String> r = Http.get(base.resolve("/api/visits"));
            r.headers().firstValue("X-Served-By").filter(name -> r.statusCode() == 200).ifPresent(seen::add);
            seen.retainAll(containers("web"));
            return seen.size() == REPLICAS;
        }, () -> "web containers " + containers("web") + ", nginx served " + seen);
        return seen;
    }

    private void redisRefusesAClientWithoutThePassword(String password) {
        String anonymous = cli.run(COMMAND_TIMEOUT, "exec", redis(), "redis-cli", "PING").output();
        assertTrue(anonymous.contains("NOAUTH"), "redis-cli without a password must get NOAUTH: " + anonymous);
        assertEquals(password, cli.run(COMMAND_TIMEOUT, "exec", redis(), "cat", "/run/secrets/redis_password")
                .ok("reading the secret").output().strip(), "the secret is the test's password file");
        assertEquals("PONG", redisCli("PING"), "with the secret's password");
    }

    /**
     * A forced update of web (every task replaced, one at a time, start-first) while a client
     * keeps sending counted requests; then the load runs on until nginx has served every new task.
     */
    private void rollingUpdateUnderLoad(URI base, Set<String> before) {
        String web = stack + "_web";
        Run run = new Scenario(base, 1, PACE, 1, this::total, () -> docker("stack ps " + stack).output()).run(
                "rolling update", () -> docker("service update --force --detach=false " + web).ok("service update"),
                load -> {
                    awaitOrExplain("the update to complete", UPDATE_TIMEOUT, () -> {
                        String state = inspect(web, "{{.UpdateStatus.State}}");
                        assertFalse(state.startsWith("rollback") || state.equals("paused"), "the update did not complete");
                        return state.equals("completed");
                    }, () -> inspect(web, "{{json .UpdateStatus}}"));
                    Set<String> after = containers("web");
                    assertEquals(REPLICAS, after.size(), "running web tasks after the update: " + after);
                    assertTrue(after.stream().noneMatch(before::contains), "every task replaced: " + before + " -> " + after);
                    long end = System.nanoTime();
                    Callable<List<String>> servedSince = () -> load.samples().stream()
                            .filter(s -> s.startNanos() > end).map(Sample::servedBy).distinct().toList();
                    awaitOrExplain("nginx to serve every new task", RESOLVE_DEADLINE,
                            () -> servedSince.call().containsAll(after), () -> "served since: " + servedSince.call());
                });
        long during = run.result().samples().stream()
                .filter(s -> s.startNanos() >= run.faultAt() && s.endNanos() <= run.struckAt()).count();
        assertTrue(during >= 20, "the client kept sending during the update: " + during + " requests");
        run.assertLossless();
    }

    /** Every step runs, the failures reported together. Volumes outlive `stack rm`: Redis's data, nginx's tmpfs. */
    @AfterEach
    void removeEverything() {
        if (stack == null) {
            return; // skipped before anything was made
        }
        assertAll("cleaning up after the Swarm test",
                () -> attempt("stack rm " + stack, "Nothing found in stack"),
                () -> awaitOrExplain("the stack's containers and networks to go", REMOVE_DEADLINE,
                        () -> leftOver().isEmpty(), this::leftOver),
                () -> assertAll(lines(docker("volume ls -q --filter " + label).output()).stream()
                        .map(volume -> () -> docker("volume rm " + volume).ok("docker volume rm"))),
                () -> assertEquals(List.of(), lines(docker("secret ls -q --filter " + label).output()), "secrets left"),
                () -> assertAll(images.stream().map(image -> () -> attempt("image rm " + image, "No such image"))),
                this::leaveSwarm);
    }

    /** Leaves the swarm if this test made it, and then docker_gwbridge if `swarm init` made that. */
    private void leaveSwarm() {
        if (!initialized) {
            return;
        }
        docker("swarm leave --force").ok("docker swarm leave --force");
        if (!gwbridgeExisted) {
            // The engine finishes tearing the swarm down (the ingress sandbox) after `leave` returns.
            Outcome rm = Waits.await("docker_gwbridge to lose its endpoints", REMOVE_DEADLINE).pollInterval(POLL)
                    .until(() -> docker("network rm docker_gwbridge"), r -> !r.output().contains("active endpoints"));
            assertTrue(rm.status() == 0 || rm.output().contains("not found"), "network rm docker_gwbridge: " + rm.output());
        }
    }

    private void attempt(String command, String harmless) {
        Outcome r = docker(command);
        assertTrue(r.status() == 0 || r.output().contains(harmless), "docker " + command + ": " + r.output());
    }

    private List<String> leftOver() {
        return Stream.of("ps -aq", "network ls -q")
                .flatMap(ls -> lines(docker(ls + " --filter " + label).output()).stream()).toList();
    }

    private Outcome docker(String commandLine) {
        return cli.docker(COMMAND_TIMEOUT, commandLine);
    }

    /** A service's running containers (on this node: the whole swarm); short ids = host names = X-Served-By. */
    private Set<String> containers(String service) {
        String filter = "label=com.docker.swarm.service.name=" + stack + "_" + service;
        return new TreeSet<>(lines(docker("ps -q --filter status=running --filter " + filter).ok("docker ps").output()));
    }

    private String redis() {
        Set<String> redis = containers("redis");
        assertEquals(1, redis.size(), "exactly one redis container: " + redis);
        return redis.iterator().next();
    }

    private String inspect(String service, String format) {
        return cli.run(COMMAND_TIMEOUT, "service", "inspect", "--format", format, service).ok("docker service inspect")
                .output().strip();
    }

    /** redis-cli in the Redis container with the password from its secret, as the healthcheck does. */
    private String redisCli(String command) {
        return cli.run(COMMAND_TIMEOUT, "exec", redis(), "sh", "-c", "REDISCLI_AUTH=\"$(cat /run/secrets/redis_password)\""
                + " exec redis-cli " + command).ok("redis-cli " + command).output().strip();
    }

    private long total() {
        String value = redisCli("GET " + RedisVisits.TOTAL_KEY);
        return value.isEmpty() ? 0 : Long.parseLong(value);
    }

    /** A wait polling every {@link #POLL} (an IOException: not yet); on a timeout, with what {@code state} says then. */
    private static void awaitOrExplain(String what, Duration timeout, Callable<Boolean> done, Callable<?> state) {
        Waits.explained(() -> Waits.await(what, timeout).pollInterval(POLL).ignoreExceptionsInstanceOf(IOException.class)
                .until(done), () -> "last: " + state.call());
    }

    private static List<String> lines(String output) {
        return output.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
    }
}

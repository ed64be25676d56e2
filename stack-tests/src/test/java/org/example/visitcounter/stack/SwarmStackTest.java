package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicReference;
import org.awaitility.core.ConditionTimeoutException;
import org.example.visitcounter.RedisVisits;
import org.example.visitcounter.stack.support.DockerCli;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.LoadClient;
import org.example.visitcounter.stack.support.LoadClient.Run;
import org.example.visitcounter.stack.support.LoadClient.Scenario;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Project;
import org.example.visitcounter.stack.support.Waits;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The production stack on Docker Swarm, the way README.md ("Docker Swarm") deploys it: the prod
 * images built by Compose, the stack file derived by {@code scripts/swarm-stack.sh} from
 * compose.yaml + prod.compose.yaml, {@code docker stack deploy} on a single-node swarm.
 *
 * <p>The engine joins a swarm ({@code docker swarm init --advertise-addr 127.0.0.1}) only if it is
 * in none, and leaves it afterwards only then. The stack has a name of its own and nginx a free
 * port (host mode: Swarm publishes on every interface; the test only ever talks to 127.0.0.1); the
 * Redis password is a temporary file, handed to the script in a test overlay ({@code -f}). Images
 * are tagged {@code swarm-test.invalid/...:<random>}: the reserved domain makes sure that Swarm's
 * pull before each task start fails at once and the local image runs. Everything the stack made
 * (services, containers, networks, secret, volumes) and the two tags are removed afterwards, and
 * the test waits until they are gone.
 *
 * <p>Checked: three web tasks, nginx serving each of them (the strict rotation itself is nginx's
 * configuration, asserted once in {@link StackPromisesTest});
 * Redis refusing a client without the password; a rolling update of web (start-first, as
 * prod.compose.yaml says) under steady load without one failed request and with Redis's total
 * equal to the 2xx responses; afterwards nginx sends to every new task.
 *
 * <p>The load is paced (10 requests/s) rather than back to back: the prod
 * nginx limits each client address to 20 requests/s (429 beyond a burst of 40), and every request
 * of the test comes from one address.
 *
 * <p>Swarm's virtual IPs (redis's default endpoint mode) need IPVS in the kernel. Where the
 * kernel has none (some VMs; this engine is local, so its kernel is this one), the test overlay
 * also sets redis to {@code endpoint_mode: dnsrr}, as README.md tells users on such hosts, and
 * says so.
 */
@Tag("docker")
class SwarmStackTest {
    private static final int REPLICAS = 3;
    /** The first build compiles the app and trains the AOT cache inside the image build; later ones hit the cache. */
    private static final Duration BUILD_TIMEOUT = Duration.ofMinutes(15);
    private static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(2);
    /** From `docker stack deploy` until all tasks run and nginx serves every replica (web's start_period is 30 s). */
    private static final Duration DEPLOY_DEADLINE = Duration.ofMinutes(3);
    /** Three tasks replaced one at a time, each started and healthy before its predecessor stops. */
    private static final Duration UPDATE_TIMEOUT = Duration.ofMinutes(5);
    /** nginx re-resolves `web` every second (upstream.conf.template); room for a loaded 2-core machine. */
    private static final Duration RESOLVE_DEADLINE = Duration.ofSeconds(30);
    /** `docker stack rm` returns at once; Swarm removes the containers and networks afterwards. */
    private static final Duration REMOVE_DEADLINE = Duration.ofMinutes(2);
    /** 10 requests/s: half of nginx's per-client rate limit. */
    private static final Duration PACE = Duration.ofMillis(100);
    private static final Duration POLL = Duration.ofMillis(250);
    private static final String STACK_LABEL = "com.docker.stack.namespace=";

    @TempDir
    Path tmp;

    private String stack;
    private DockerCli cli;
    private Map<String, String> env;
    private final List<String> figures = new ArrayList<>();

    @Test
    void deployServeAndRollingUpdateWithoutAFailedRequest() throws Exception {
        DockerCli.assumeEngine();
        Processes.assumeTool("scripts/swarm-stack.sh needs it", "jq", "--version");
        String id = Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 16);
        stack = "vcswarmtest" + id;
        int port = Ports.freeBlock(1);
        env = new HashMap<>();
        env.put("REGISTRY", "swarm-test.invalid");
        env.put("TAG", "swarm-test-" + id);
        env.put("HTTP_PORT", Integer.toString(port));
        cli = new DockerCli(env);
        URI base = URI.create("http://127.0.0.1:" + port);

        String password = "swarm-test-" + Long.toHexString(ThreadLocalRandom.current().nextLong());
        Path overlay = testOverlay(password);
        List<String> images = List.of("swarm-test.invalid/visit-counter-web:" + env.get("TAG"),
                "swarm-test.invalid/visit-counter-nginx:" + env.get("TAG"));

        boolean gwbridgeExisted = cli.docker(COMMAND_TIMEOUT, "network inspect docker_gwbridge").status() == 0;
        boolean initialized = joinSwarm();
        Throwable failure = null;
        try {
            long start = System.nanoTime();
            cli.run(BUILD_TIMEOUT, "compose", "-f", "compose.yaml", "-f", "prod.compose.yaml", "-f", overlay.toString(),
                    "build").ok("building the prod images");
            figures.add("build " + seconds(start));

            start = System.nanoTime();
            // The images exist on this node only: no registry to resolve their digests against.
            script(COMMAND_TIMEOUT, "-f", overlay.toString(), "deploy", stack, "--resolve-image", "never")
                    .ok("scripts/swarm-stack.sh deploy");
            Set<String> replicas = awaitDeployed(base);
            figures.add("deploy to serving " + seconds(start));

            derivedSettingsAreInForce();
            redisRefusesAClientWithoutThePassword(password);
            rollingUpdateUnderLoad(base, replicas);
        } catch (Throwable t) {
            failure = t;
            System.out.println(diagnostics());
            throw t;
        } finally {
            try {
                removeEverything(images, initialized, gwbridgeExisted);
            } catch (Throwable cleanup) {
                if (failure == null) {
                    throw cleanup;
                }
                failure.addSuppressed(cleanup);
            }
            System.out.println("SwarmStackTest (" + stack + "): " + String.join("; ", figures));
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** Init a single-node swarm unless the engine is in one; true if this test made it. */
    private boolean joinSwarm() {
        String state = cli.docker(COMMAND_TIMEOUT, "info --format {{.Swarm.LocalNodeState}}").ok("docker info")
                .output().strip();
        if (state.equals("inactive")) {
            cli.docker(COMMAND_TIMEOUT, "swarm init --advertise-addr 127.0.0.1").ok("docker swarm init");
            figures.add("swarm initialized by the test");
            return true;
        }
        assertEquals("active", state, "the engine's swarm is in state " + state);
        String manager = cli.docker(COMMAND_TIMEOUT, "info --format {{.Swarm.ControlAvailable}}/{{.Swarm.Nodes}}")
                .ok("docker info").output().strip();
        // The images are on this node only: tasks must not land on another.
        assertEquals("true/1", manager, "the engine is in a swarm, but not as the manager of a single-node swarm"
                + " (ControlAvailable/Nodes)");
        figures.add("existing single-node swarm");
        return false;
    }

    /** The test's last -f file: the temporary secret, and redis without a VIP on a kernel without IPVS. */
    private Path testOverlay(String password) throws IOException {
        Path secret = tmp.resolve("redis_password.txt");
        Files.writeString(secret, password + "\n");
        String yaml = "secrets:\n  redis_password:\n    file: " + secret.toAbsolutePath() + "\n";
        if (!kernelHasIpvs()) {
            figures.add("kernel without IPVS: redis endpoint_mode dnsrr");
            yaml += "services:\n  redis:\n    deploy:\n      endpoint_mode: dnsrr\n";
        }
        Path overlay = tmp.resolve("swarm-test.compose.yaml");
        Files.writeString(overlay, yaml);
        return overlay;
    }

    /** IPVS loaded or built in, or a loadable module for the running kernel. */
    private static boolean kernelHasIpvs() throws IOException {
        if (Files.exists(Path.of("/sys/module/ip_vs"))) {
            return true;
        }
        Path modules = Path.of("/lib/modules", Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip());
        for (String index : List.of("modules.builtin", "modules.dep")) {
            Path file = modules.resolve(index);
            if (Files.isRegularFile(file) && Files.readString(file).contains("/ip_vs.ko")) {
                return true;
            }
        }
        return false;
    }

    /** Polls until every service has all its tasks running and nginx has served every web task. */
    private Set<String> awaitDeployed(URI base) {
        Set<String> seen = new TreeSet<>();
        var web = new AtomicReference<Set<String>>(Set.of());
        var services = new AtomicReference<List<String>>(List.of());
        awaitOrExplain("the stack to run all its tasks and serve every replica through nginx", DEPLOY_DEADLINE, () -> {
            // "name running/desired", e.g. "vcswarmtest1_web 3/3" or "..._nginx 1/1 (max 1 per node)".
            services.set(lines(cli.run(COMMAND_TIMEOUT, "service", "ls", "--filter", "label=" + STACK_LABEL + stack,
                    "--format", "{{.Name}} {{.Replicas}}").ok("docker service ls").output()));
            web.set(hostnames("web"));
            boolean running = services.get().size() == 3 && web.get().size() == REPLICAS
                    && services.get().stream().allMatch(l -> l.matches("\\S+ ([1-9]\\d*)/\\1\\b.*"))
                    && services.get().stream().anyMatch(l -> l.startsWith(stack + "_web " + REPLICAS + "/"));
            if (!running) {
                return false;
            }
            HttpResponse<String> r = Http.get(base.resolve("/api/visits"));
            r.headers().firstValue("X-Served-By").filter(name -> r.statusCode() == 200).ifPresent(seen::add);
            seen.retainAll(web.get());
            return seen.equals(web.get());
        }, () -> "services " + services + ", web containers " + web + ", nginx served " + seen);
        return web.get();
    }

    /** What the stack file carried over from prod.compose.yaml, as Swarm runs it. */
    private void derivedSettingsAreInForce() {
        String web = inspect(stack + "_web", "{{.Spec.EndpointSpec.Mode}} {{.Spec.UpdateConfig.Order}}"
                + " {{.Spec.Mode.Replicated.Replicas}}");
        assertEquals("dnsrr start-first " + REPLICAS, web, "web's endpoint mode, update order and replicas");
        for (String service : List.of("nginx", "redis", "web")) {
            for (String container : containers(service)) {
                String hardening = cli.run(COMMAND_TIMEOUT, "inspect", "--format",
                        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}", container).ok("docker inspect")
                        .output().strip();
                assertEquals("true [ALL]", hardening, service + ": read-only root file system, every capability dropped");
            }
        }
        String ports = inspect(stack + "_nginx", "{{range .Endpoint.Ports}}{{.PublishMode}}:{{.PublishedPort}}->{{.TargetPort}} {{end}}");
        assertEquals("host:" + env.get("HTTP_PORT") + "->8080", ports, "nginx's one port (prod's !override), host mode");
    }

    private void redisRefusesAClientWithoutThePassword(String password) {
        String redis = single(containers("redis"), "redis container");
        String anonymous = cli.run(COMMAND_TIMEOUT, "exec", redis, "redis-cli", "PING").output();
        assertTrue(anonymous.contains("NOAUTH"), "redis-cli without a password must get NOAUTH: " + anonymous);
        String secret = cli.run(COMMAND_TIMEOUT, "exec", redis, "cat", "/run/secrets/redis_password").ok("reading the secret")
                .output().strip();
        assertEquals(password, secret, "the secret is the test's password file");
        assertEquals("PONG", redisCli(redis, "PING"), "with the secret's password");
    }

    /**
     * A forced update of web (every task replaced, one at a time, start-first) while a client
     * keeps sending counted requests; then the load runs on until nginx has served every new task.
     */
    private void rollingUpdateUnderLoad(URI base, Set<String> before) {
        String redis = single(containers("redis"), "redis container");
        String web = stack + "_web";
        Run run = new Scenario(base, 1, PACE, 1, () -> total(redis), this::diagnostics).run("rolling update",
                () -> cli.docker(UPDATE_TIMEOUT, "service update --force --detach=false " + web).ok("docker service update"),
                load -> {
                    awaitOrExplain("the update to complete", UPDATE_TIMEOUT, () -> {
                        String state = inspect(web, "{{.UpdateStatus.State}}");
                        assertFalse(state.startsWith("rollback") || state.equals("paused"), "the update did not complete");
                        return state.equals("completed");
                    }, () -> inspect(web, "{{json .UpdateStatus}}"));
                    Set<String> after = hostnames("web");
                    assertEquals(REPLICAS, after.size(), "running web tasks after the update: " + after);
                    assertTrue(after.stream().noneMatch(before::contains), "every task was replaced: " + before + " -> " + after);
                    long end = System.nanoTime();
                    awaitOrExplain("nginx to serve every new task", RESOLVE_DEADLINE, () -> load.samples().stream()
                            .filter(s -> s.startNanos() > end).map(LoadClient.Sample::servedBy).toList().containsAll(after),
                            () -> "served since: " + load.samples().stream().filter(s -> s.startNanos() > end)
                                    .map(LoadClient.Sample::servedBy).distinct().toList());
                });
        long during = run.result().samples().stream()
                .filter(s -> s.startNanos() >= run.faultAt() && s.endNanos() <= run.struckAt()).count();
        figures.add(String.format("rolling update %s: %d requests during it, %s, served by %s", seconds(run.faultAt(),
                run.struckAt()), during, run.result().figures(run.counted()), run.result().servedBy()));
        assertTrue(during >= 20, "the client kept sending during the update: " + during + " requests");
        run.assertLossless();
    }

    // ---------------------------------------------------------------------------------------------

    /** `docker stack rm`, then wait until its containers and networks are gone; then its volumes, the tags, the swarm. */
    private void removeEverything(List<String> images, boolean initialized, boolean gwbridgeExisted) {
        List<String> problems = new ArrayList<>();
        String label = STACK_LABEL + stack;
        attempt(problems, "stack rm " + stack, "Nothing found in stack");
        long start = System.nanoTime();
        try {
            Waits.await("the stack's containers and networks to go", REMOVE_DEADLINE).pollInterval(POLL)
                    .until(() -> containersAndNetworks(label).isEmpty());
            figures.add("stack removed " + seconds(start));
        } catch (ConditionTimeoutException e) {
            problems.add(stack + " still has " + containersAndNetworks(label) + " after " + REMOVE_DEADLINE);
        }
        // Volumes outlive `docker stack rm` (Redis's data, nginx's tmpfs volumes): this stack's are the test's.
        lines(cli.docker(COMMAND_TIMEOUT, "volume ls -q --filter label=" + label).output())
                .forEach(volume -> attempt(problems, "volume rm " + volume, null));
        List<String> secrets = lines(cli.docker(COMMAND_TIMEOUT, "secret ls -q --filter label=" + label).output());
        if (!secrets.isEmpty()) {
            problems.add("secrets of " + stack + " left: " + secrets);
        }
        images.forEach(image -> attempt(problems, "image rm " + image, "No such image"));
        if (initialized && attempt(problems, "swarm leave --force", null) && !gwbridgeExisted) {
            // Made by `swarm init` for this test's swarm; unused once the swarm is gone, which
            // the engine finishes tearing down (the ingress sandbox) after `leave` returns.
            try {
                Processes.Outcome rm = Waits.await("docker_gwbridge to lose its endpoints", REMOVE_DEADLINE).pollInterval(POLL)
                        .until(() -> cli.docker(COMMAND_TIMEOUT, "network rm docker_gwbridge"),
                                r -> r.status() == 0 || !r.output().contains("active endpoints"));
                if (rm.status() != 0 && !rm.output().contains("not found")) {
                    problems.add("docker network rm docker_gwbridge: " + rm.output());
                }
            } catch (ConditionTimeoutException e) {
                problems.add("docker network rm docker_gwbridge: " + e.getMessage());
            }
        }
        if (!problems.isEmpty()) {
            fail("cleaning up after the Swarm test:\n" + String.join("\n", problems));
        }
    }

    /** {@code docker <command>}; true if it exited 0 or said {@code harmless}, else its output goes into {@code problems}. */
    private boolean attempt(List<String> problems, String command, String harmless) {
        Processes.Outcome r = cli.docker(COMMAND_TIMEOUT, command);
        boolean ok = r.status() == 0 || (harmless != null && r.output().contains(harmless));
        if (!ok) {
            problems.add("docker " + command + ": " + r.output());
        }
        return r.status() == 0;
    }

    private String diagnostics() {
        if (cli == null || stack == null) {
            return "";
        }
        return "docker stack ps " + stack + ":\n" + cli.docker(COMMAND_TIMEOUT, "stack ps --no-trunc " + stack).output()
                + "\nnginx's last log lines:\n" + cli.docker(COMMAND_TIMEOUT, "service logs --raw --tail 30 " + stack + "_nginx")
                .output();
    }

    // ---------------------------------------------------------------------------------------------

    private Processes.Outcome script(Duration timeout, String... args) {
        List<String> command = new ArrayList<>(List.of(Project.root().resolve("scripts/swarm-stack.sh").toString()));
        command.addAll(Arrays.asList(args));
        return Processes.run(timeout, command, env);
    }

    /** The running containers of one of the stack's services (this node is the whole swarm). */
    private List<String> containers(String service) {
        return lines(cli.docker(COMMAND_TIMEOUT, "ps -q --filter status=running --filter label=com.docker.swarm.service.name="
                + stack + "_" + service).ok("docker ps").output());
    }

    /** The host names of a service's running containers: the names the replicas put in X-Served-By. */
    private Set<String> hostnames(String service) {
        List<String> ids = containers(service);
        Set<String> names = new TreeSet<>();
        if (!ids.isEmpty()) {
            List<String> command = new ArrayList<>(List.of("inspect", "--format", "{{.Config.Hostname}}"));
            command.addAll(ids);
            Processes.Outcome r = cli.run(COMMAND_TIMEOUT, command.toArray(String[]::new));
            if (r.status() == 0) { // a container may go between ps and inspect: then ask again on the next poll
                names.addAll(lines(r.output()));
            }
        }
        return names;
    }

    private String inspect(String service, String format) {
        return cli.run(COMMAND_TIMEOUT, "service", "inspect", "--format", format, service).ok("docker service inspect")
                .output().strip();
    }

    /** redis-cli in the Redis container with the password from its secret, as the healthcheck does. */
    private String redisCli(String container, String... args) {
        String script = "REDISCLI_AUTH=\"$(cat /run/secrets/redis_password)\" exec redis-cli \"$@\"";
        List<String> command = new ArrayList<>(List.of("exec", container, "sh", "-c", script, "redis-cli"));
        command.addAll(Arrays.asList(args));
        return cli.run(COMMAND_TIMEOUT, command.toArray(String[]::new)).ok("redis-cli " + String.join(" ", args))
                .output().strip();
    }

    private long total(String redis) {
        String value = redisCli(redis, "GET", RedisVisits.TOTAL_KEY);
        return value.isEmpty() ? 0 : Long.parseLong(value);
    }

    /** A wait polling every {@link #POLL} (an IOException: not yet); on a timeout, with what {@code state} says then. */
    private static void awaitOrExplain(String what, Duration timeout, Callable<Boolean> done, Callable<String> state) {
        Waits.explained(() -> Waits.await(what, timeout).pollInterval(POLL).ignoreExceptionsInstanceOf(IOException.class)
                .until(done), () -> "last: " + state.call());
    }

    /** What is left of the stack: its containers and networks. */
    private List<String> containersAndNetworks(String label) {
        List<String> left = new ArrayList<>(lines(cli.docker(COMMAND_TIMEOUT, "ps -aq --filter label=" + label).output()));
        left.addAll(lines(cli.docker(COMMAND_TIMEOUT, "network ls -q --filter label=" + label).output()));
        return left;
    }

    private static String single(List<String> items, String what) {
        assertEquals(1, items.size(), "exactly one " + what + ": " + items);
        return items.get(0);
    }

    private static List<String> lines(String output) {
        return output.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
    }

    private static String seconds(long startNanos) {
        return seconds(startNanos, System.nanoTime());
    }

    private static String seconds(long startNanos, long endNanos) {
        return String.format("%.1f s", (endNanos - startNanos) / 1e9);
    }
}

package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.example.visitcounter.Settings;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Project;
import org.example.visitcounter.stack.support.RedisProcess;
import org.example.visitcounter.stack.support.Waits;

/**
 * One loopback stack (redis-server, the replica JVMs, nginx with the shipped config), started by
 * {@code scripts/local-stack.sh} on free ports: the same script people and the benchmark use. As
 * the shared promises' {@link Stack} ({@link #withOwnRedis()}), its Redis is a {@link RedisProcess}
 * of the test's own (the script never restarts its own). Its state directory stays under
 * {@code stack-tests/target/local-stack/} for a post-mortem.
 */
public final class LocalStack implements Stack {
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(60);
    private static final Pattern PORT_CLASH = Pattern.compile("(?i)already in use|failed to bind");

    /** What the script (its --help) or the replicas (Settings.Variable) read: nothing leaks in from the caller's shell. */
    private static final List<String> OWN_VARIABLES = Stream.concat(Stream.of(
            "HTTP_PORT", "WEB_BASE_PORT", "REPLICAS", "REDIS_PORT", "REDIS_ARGS", "REDIS_URL", "STATE_DIR",
            "KEEP_STATE", "READY_TIMEOUT", "STOP_TIMEOUT", "NGINX_BALANCE", "NGINX_RATE_LIMIT", "NGINX_BIN",
            "JAVA_HOME", "JAVA_OPTS", "JVM_OPTIONS_FILE", "WEB_APP_JAR", "REPLICA_COMMAND"),
            Stream.of(Settings.Variable.values()).map(Enum::name)).toList();

    private final int replicas;
    /** Ports: nginx on this one, Redis on the next, the replicas from the one after. */
    private final int httpPort;
    private final Path stateDir = Project.newDirectory("local-stack", "stack-");
    private final Process process;
    private final Set<Long> seenPids = ConcurrentHashMap.newKeySet();
    private final Map<String, Long> killed = new HashMap<>();
    /** Null where the script runs Redis. */
    private RedisProcess ownRedis;
    private boolean closed;

    private LocalStack(Map<String, String> extraEnv) {
        replicas = Integer.parseInt(extraEnv.getOrDefault("REPLICAS", "3"));
        httpPort = Ports.freeBlock(replicas + 2);
        var env = new HashMap<>(Map.of("HTTP_PORT", Integer.toString(httpPort), "REDIS_PORT",
                Integer.toString(httpPort + 1), "WEB_BASE_PORT", Integer.toString(httpPort + 2), "STATE_DIR",
                stateDir.toString()));
        env.putAll(extraEnv);
        process = Processes.start(List.of("bash", "scripts/local-stack.sh"), scriptEnvironment(env),
                stateDir.resolve("local-stack.out"));
        // If the test JVM goes away without close(), the script still stops everything it started.
        Runtime.getRuntime().addShutdownHook(new Thread(process::destroy, "local-stack-stop"));
    }

    /** The default stack with a Redis of the test's own, which it can stop, freeze and restart. */
    public static LocalStack withOwnRedis() {
        RedisProcess redis = RedisProcess.start("always");
        try {
            LocalStack stack = start(Map.of("REDIS_URL", redis.url()));
            stack.ownRedis = redis;
            return stack;
        } catch (RuntimeException | Error e) {
            redis.close();
            throw e;
        }
    }

    /**
     * A stack with extra environment for the script and the replicas, e.g. {@code REPLICAS},
     * {@code REDIS_ARGS}, {@code NGINX_RATE_LIMIT}, {@code REQUEST_DEADLINE_MS}. Ports and
     * {@code STATE_DIR} are chosen here.
     */
    public static LocalStack start(Map<String, String> extraEnv) {
        for (int attempt = 1; ; attempt++) {
            var stack = new LocalStack(extraEnv);
            Path ready = stack.stateDir.resolve("ready");
            Waits.explained(() -> await("local-stack.sh to report ready", READY_TIMEOUT)
                    .pollInterval(Duration.ofMillis(100)).until(() -> Files.exists(ready) || !stack.process.isAlive()),
                    () -> stack.terminate() + ", its output:\n" + stack.output());
            if (Files.exists(ready)) {
                stack.allPids(); // the first pids
                return stack;
            }
            // Another process may have taken a port between our check and the bind: other ports then.
            if (attempt == 3 || !PORT_CLASH.matcher(stack.output()).find()) {
                fail("local-stack.sh exited with status " + stack.process.exitValue() + " before the stack was ready:\n"
                        + stack.output());
            }
        }
    }

    @Override
    public URI uri(String path) {
        return URI.create("http://127.0.0.1:" + httpPort + path);
    }

    @Override
    public List<String> replicas() {
        return IntStream.rangeClosed(1, replicas).mapToObj(i -> "web-" + i).toList();
    }

    /** A replica directly, bypassing nginx: {@code http://127.0.0.1:<port>/}. */
    public URI replicaUri(String name) {
        int index = replicas().indexOf(name);
        if (index < 0) {
            throw new IllegalArgumentException("no replica " + name + " in " + replicas());
        }
        return URI.create("http://127.0.0.1:" + (httpPort + 2 + index) + "/");
    }

    public void awaitReady(String name, Duration timeout) {
        URI readyz = replicaUri(name).resolve("/readyz");
        await(name + " /readyz 200", timeout).until(() -> Http.status(readyz) == 200);
    }

    /** STATE_DIR/logs: redis.log, web-N.log, nginx.log (access log), nginx-error.log. */
    public Path logs() {
        return stateDir.resolve("logs");
    }

    /** What the script printed so far (its own log lines and banner). */
    public String output() {
        try {
            return Files.readString(stateDir.resolve("local-stack.out"));
        } catch (IOException e) {
            return "(no output: " + e + ")";
        }
    }

    /** The current pid of {@code redis}, {@code nginx} (master) or {@code web-N} (its JVM). */
    public long pid(String name) {
        long pid = readPid(name);
        if (pid <= 0) {
            throw new IllegalStateException("no pid file for " + name + " in " + stateDir.resolve("pids"));
        }
        seenPids.add(pid);
        return pid;
    }

    /** Waits until {@code name}'s pid file holds a pid other than {@code old} (a restart), and returns it. */
    public long waitForPidChange(String name, long old, Duration timeout) {
        await(name + " to get a new pid (old " + old + ")", timeout).until(() -> readPid(name) > 0 && readPid(name) != old);
        return pid(name);
    }

    /** Sends a signal ({@code "TERM"}, {@code "KILL"}, {@code "STOP"}, {@code "CONT"}, ...) with {@code kill -s}. */
    public void signal(long pid, String signal) {
        if (!seenPids.contains(pid)) {
            throw new IllegalArgumentException("pid " + pid + " is not a process of this stack");
        }
        Processes.run(List.of("kill", "-s", signal, Long.toString(pid))).ok("kill -s " + signal + " " + pid);
    }

    /** The test's own Redis ({@link #withOwnRedis()}). */
    public RedisProcess ownRedis() {
        return Objects.requireNonNull(ownRedis, "this stack's Redis is the script's: start it withOwnRedis()");
    }

    @Override
    public void killReplica(String name) {
        long pid = pid(name);
        killed.put(name, pid);
        signal(pid, "KILL");
    }

    /** local-stack.sh's supervisor restarts a replica that died: waits for it, then for /readyz. */
    @Override
    public void startReplica(String name) {
        long old = Objects.requireNonNull(killed.remove(name), () -> name + " was not killed");
        waitForPidChange(name, old, Duration.ofSeconds(30));
        assertFalse(isAlive(old), name + "'s killed JVM (pid " + old + ") is still alive");
        assertTrue(output().contains(name + " restarted"), this::output);
        awaitReady(name, READY_TIMEOUT);
    }

    @Override
    public void stopRedis() {
        ownRedis().terminate();
    }

    @Override
    public void startRedis() {
        ownRedis().startAgain("always");
    }

    @Override
    public long redisTotal() {
        return ownRedis().total();
    }

    /**
     * Stops the stack like Ctrl-C would (SIGTERM to the script) and checks that the script exited
     * 0 and that no process it ran (any pid seen in its pid files) is still alive; then the own Redis.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            Set<Long> pids = allPids();
            assertEquals("exited 0", terminate(), () -> "local-stack.sh after SIGTERM:\n" + output());
            List<Long> alive = pids.stream().filter(LocalStack::isAlive).toList();
            assertEquals(List.of(), alive, () -> "processes left behind by local-stack.sh:\n" + output());
        } finally {
            if (ownRedis != null) {
                ownRedis.close();
            }
        }
    }

    /** SIGTERM to the script, as Ctrl-C: it stops what it started. Says how it ended ("exited 0"). */
    private String terminate() {
        process.destroy();
        try {
            if (!process.waitFor(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                process.destroyForcibly();
                return "still running " + STOP_TIMEOUT.toSeconds() + " s after SIGTERM (then SIGKILLed)";
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        return "exited " + process.exitValue();
    }

    /** Every pid seen in the pid files, now or before. */
    private Set<Long> allPids() {
        try (Stream<Path> files = Files.list(stateDir.resolve("pids"))) {
            files.map(f -> f.getFileName().toString()).filter(n -> !n.startsWith(".")).forEach(this::pid);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Set.copyOf(seenPids);
    }

    private long readPid(String name) {
        try {
            String text = Files.readString(stateDir.resolve("pids").resolve(name)).trim();
            return text.isEmpty() ? -1 : Long.parseLong(text);
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    private static boolean isAlive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    /** For {@link Processes#run}: the stack's own variables removed, JAVA_HOME the tests' JDK, then {@code extra}. */
    static Map<String, String> scriptEnvironment(Map<String, String> extra) {
        var env = new HashMap<String, String>();
        OWN_VARIABLES.forEach(name -> env.put(name, null));
        env.put("JAVA_HOME", System.getProperty("java.home"));
        env.putAll(extra);
        return env;
    }
}

package org.example.visitcounter;

import static org.example.visitcounter.Waits.await;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.containers.wait.strategy.WaitStrategy;
import org.testcontainers.utility.DockerImageName;
import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.exceptions.JedisException;

/**
 * A real Redis for the tests, empty before each test: a Testcontainers container where Docker
 * runs, otherwise this machine's {@code redis-server} on a free loopback port. Either way it can
 * be stopped, started again on the same port with its data (AOF), frozen and thawed.
 *
 * <p>The container's image is the project's one Redis pin: {@code REDIS_IMAGE} when set, as for
 * Compose, otherwise the default in the repository's compose.yaml.
 */
final class RealRedis implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback {
    private static final Duration READY_WITHIN = Duration.ofSeconds(30);
    private static final Pattern COMPOSE_PIN = Pattern.compile("(?m)^    image: &redis-image \\$\\{REDIS_IMAGE:-([^}]+)}$");

    private final int port = freePort();
    private Backend backend;

    String url() {
        return "redis://127.0.0.1:" + port;
    }

    int port() {
        return port;
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        backend = DockerClientFactory.instance().isDockerAvailable() ? new Container(image(), port) : new LocalProcess(port);
        start();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (backend != null) {
            backend.remove();
        }
    }

    @Override
    public void beforeEach(ExtensionContext context) throws IOException {
        if (!backend.running()) {
            start();
        }
        call(Jedis::flushAll);
    }

    void start() throws IOException {
        backend.start();
        // Also a reply such as LOADING (the AOF still replaying) is not ready yet; on a timeout the
        // last such error is the failure's cause.
        await("Redis on port " + port + " to answer PING", READY_WITHIN).pollInterval(Duration.ofMillis(20))
                .ignoreExceptionsInstanceOf(JedisException.class).until(() -> "PONG".equals(call(Jedis::ping)));
    }

    /** A graceful stop (SIGTERM: Redis syncs its AOF and exits), so a later start keeps the data. */
    void stop() throws IOException {
        backend.stop();
    }

    /** SIGSTOP: connections are accepted and commands queued, but nothing answers. */
    void freeze() throws IOException {
        backend.freeze(true);
    }

    void thaw() throws IOException {
        backend.freeze(false);
    }

    /** Commands on a connection of their own (Jedis, 2 s timeout), e.g. {@code call(jedis -> jedis.info("errorstats"))}. */
    <T> T call(Function<Jedis, T> commands) {
        try (var jedis = new Jedis("127.0.0.1", port, 2000)) {
            return commands.apply(jedis);
        }
    }

    long total() {
        String value = call(jedis -> jedis.get(RedisVisits.TOTAL_KEY));
        return value == null ? 0 : Long.parseLong(value);
    }

    /** REDIS_IMAGE when set and not empty (Compose's {@code :-}), otherwise compose.yaml's pin. */
    static String image() throws IOException {
        String fromEnv = System.getenv("REDIS_IMAGE");
        if (fromEnv != null && !fromEnv.isBlank()) {
            return fromEnv.strip();
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path compose = dir.resolve("compose.yaml");
            if (Files.isRegularFile(compose)) {
                Matcher pin = COMPOSE_PIN.matcher(Files.readString(compose));
                if (pin.find()) {
                    return pin.group(1);
                }
                throw new IllegalStateException(compose + " has no redis `image: &redis-image ${REDIS_IMAGE:-...}`");
            }
        }
        throw new IllegalStateException("no compose.yaml above " + Path.of("").toAbsolutePath() + ": set REDIS_IMAGE");
    }

    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private interface Backend {
        void start() throws IOException;

        void stop() throws IOException;

        void freeze(boolean frozen) throws IOException;

        boolean running();

        void remove();
    }

    private static final class LocalProcess implements Backend {
        private final int port;
        private final Path dir;
        private Process process;

        LocalProcess(int port) throws IOException {
            this.port = port;
            this.dir = Files.createTempDirectory("redis-test-");
        }

        @Override
        public void start() throws IOException {
            try {
                process = new ProcessBuilder("redis-server", "--port", Integer.toString(port), "--bind", "127.0.0.1",
                        "--dir", dir.toString(), "--save", "", "--appendonly", "yes", "--appendfsync", "always")
                        .redirectErrorStream(true)
                        .redirectOutput(dir.resolve("redis.log").toFile())
                        .start();
            } catch (IOException e) {
                throw new IOException("Neither Docker nor redis-server is available: install redis-server "
                        + "(apt-get install redis-server) or start Docker", e);
            }
        }

        @Override
        public void stop() throws IOException {
            process.destroy(); // SIGTERM: Redis shuts down cleanly
            try {
                process.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }

        @Override
        public void freeze(boolean frozen) throws IOException {
            try {
                new ProcessBuilder("kill", frozen ? "-STOP" : "-CONT", Long.toString(process.pid())).inheritIO().start().waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }

        @Override
        public boolean running() {
            return process != null && process.isAlive();
        }

        @Override
        public void remove() {
            if (process != null) {
                process.destroyForcibly();
            }
            try (var files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            } catch (IOException leftBehind) {
                // a temporary directory: not worth failing the tests for
            }
        }
    }

    /** One container for the test class, kept across stop and start (its data and its host port stay). */
    private static final class Container implements Backend {
        private final GenericContainer<?> container;
        // Ready = Redis answers PING, asked inside the container as compose.yaml's healthcheck asks,
        // so it holds wherever Testcontainers thinks the host is (in a container: the bridge gateway,
        // where the loopback-only port below is not).
        private final WaitStrategy ready =
                Wait.forSuccessfulCommand("redis-cli ping | grep -q PONG").withStartupTimeout(READY_WITHIN);

        @SuppressWarnings("resource")
        Container(String image, int port) {
            // A fixed host port on loopback, so that a stopped and restarted container is where
            // clients left it.
            container = new GenericContainer<>(DockerImageName.parse(image))
                    .withCommand("redis-server", "--appendonly", "yes", "--appendfsync", "always", "--save", "")
                    .withExposedPorts(6379)
                    .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withPortBindings(
                            new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", port), ExposedPort.tcp(6379))))
                    .waitingFor(ready);
        }

        @Override
        public void start() {
            if (container.getContainerId() == null) {
                container.start();
            } else {
                container.getDockerClient().startContainerCmd(container.getContainerId()).exec();
                ready.waitUntilReady(container);
            }
        }

        @Override
        public void stop() throws IOException {
            var docker = container.getDockerClient();
            docker.stopContainerCmd(container.getContainerId()).exec();
            Long exit = docker.inspectContainerCmd(container.getContainerId()).exec().getState().getExitCodeLong();
            if (exit == null || exit != 0) {
                throw new IOException("Redis did not exit cleanly on SIGTERM (status " + exit + "): its AOF may be"
                        + " incomplete. Its log:\n" + container.getLogs());
            }
        }

        @Override
        public void freeze(boolean frozen) {
            var docker = container.getDockerClient();
            if (frozen == Boolean.TRUE.equals(docker.inspectContainerCmd(container.getContainerId()).exec().getState()
                    .getPaused())) {
                return; // already so: thawing twice is harmless, as kill -CONT is
            }
            if (frozen) {
                docker.pauseContainerCmd(container.getContainerId()).exec();
            } else {
                docker.unpauseContainerCmd(container.getContainerId()).exec();
            }
        }

        @Override
        public boolean running() {
            return Boolean.TRUE.equals(container.getDockerClient().inspectContainerCmd(container.getContainerId())
                    .exec().getState().getRunning());
        }

        @Override
        public void remove() {
            container.stop();
        }
    }
}

package org.example.visitcounter;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
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
        command("FLUSHALL");
    }

    void start() throws IOException {
        backend.start();
        Instant deadline = Instant.now().plus(READY_WITHIN);
        while (true) {
            String last;
            try {
                last = command("PING");
                if (last.startsWith("+PONG")) {
                    return;
                }
            } catch (IOException notYet) {
                last = notYet.toString();
            }
            // Also a reply such as -LOADING (the AOF still replaying) is not ready yet.
            if (Instant.now().isAfter(deadline)) {
                throw new IOException("Redis did not answer PING on port " + port + " within " + READY_WITHIN
                        + " (last: " + last + ")");
            }
            pause();
        }
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

    /** Sends one command; returns a status or error line as sent, or a bulk string's content. */
    String command(String... words) throws IOException {
        try (Socket socket = new Socket("127.0.0.1", port)) {
            socket.setSoTimeout(2000);
            OutputStream out = socket.getOutputStream();
            var request = new StringBuilder("*" + words.length + "\r\n");
            for (String w : words) {
                request.append('$').append(w.getBytes(StandardCharsets.UTF_8).length).append("\r\n").append(w).append("\r\n");
            }
            out.write(request.toString().getBytes(StandardCharsets.UTF_8));
            out.flush();
            InputStream in = socket.getInputStream();
            String first = readLine(in);
            if (first.startsWith("$") && !first.equals("$-1")) {
                byte[] bulk = in.readNBytes(Integer.parseInt(first.substring(1)));
                return new String(bulk, StandardCharsets.UTF_8);
            }
            return first;
        }
    }

    private static String readLine(InputStream in) throws IOException {
        var line = new StringBuilder();
        int c;
        while ((c = in.read()) != -1 && c != '\n') {
            line.append((char) c);
        }
        if (line.isEmpty()) {
            throw new IOException("no reply");
        }
        return line.toString().strip();
    }

    long total() throws IOException {
        String value = command("GET", RedisVisits.TOTAL_KEY);
        return value.equals("$-1") ? 0 : Long.parseLong(value);
    }

    private static void pause() throws IOException {
        try {
            Thread.sleep(20); // between polls, not instead of one
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
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

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
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.DockerImageName;
import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;

/**
 * A real Redis for the tests, empty before each test: a Testcontainers container where Docker
 * runs, otherwise this machine's {@code redis-server} on a free loopback port. Either way it can
 * be stopped, started again on the same port with its data (AOF), frozen and thawed.
 */
final class RealRedis implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback {
    static final String IMAGE = "redis:7.4.6-alpine";
    private static final Duration READY_WITHIN = Duration.ofSeconds(30);

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
        backend = DockerClientFactory.instance().isDockerAvailable() ? new Container(port) : new LocalProcess(port);
        start();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        backend.remove();
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
            try {
                if (command("PING").startsWith("+PONG")) {
                    return;
                }
            } catch (IOException notYet) {
                if (Instant.now().isAfter(deadline)) {
                    throw new IOException("Redis did not answer PING on port " + port + " within " + READY_WITHIN, notYet);
                }
            }
            pause();
        }
    }

    /** A graceful stop (SHUTDOWN saves the AOF), so a later start keeps the data. */
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
        }
    }

    private static final class Container implements Backend {
        private final GenericContainer<?> container;

        @SuppressWarnings("resource")
        Container(int port) {
            // A fixed host port, so that a stopped and restarted container is where clients left it.
            container = new GenericContainer<>(DockerImageName.parse(IMAGE))
                    .withCommand("redis-server", "--appendonly", "yes", "--appendfsync", "always", "--save", "")
                    .withExposedPorts(6379)
                    .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withPortBindings(
                            new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", port), ExposedPort.tcp(6379))));
        }

        @Override
        public void start() {
            if (container.getContainerId() == null) {
                container.start();
            } else {
                container.getDockerClient().startContainerCmd(container.getContainerId()).exec();
            }
        }

        @Override
        public void stop() {
            container.getDockerClient().stopContainerCmd(container.getContainerId()).exec();
        }

        @Override
        public void freeze(boolean frozen) {
            var docker = container.getDockerClient();
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

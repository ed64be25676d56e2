package org.example.visitcounter.stack.support;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.example.visitcounter.stack.support.Waits.explained;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * An image registry on loopback for the push and pull tests: Debian's docker-registry
 * ({@code apt-get install docker-registry}), storing into {@code dir}; {@link #close()} stops it.
 * The engine treats a registry on 127.0.0.1 as insecure-allowed, so plain HTTP works.
 */
public final class Registry implements AutoCloseable {
    /** host:port, the prefix of the image names pushed here. */
    public final String address;
    private final Process process;

    public Registry(Path dir) throws IOException {
        int port = Ports.freeBlock(1);
        address = "127.0.0.1:" + port;
        Path config = Files.writeString(dir.resolve("registry.yml"), """
                version: 0.1
                storage:
                  filesystem:
                    rootdirectory: %s
                http:
                  addr: %s
                """.formatted(dir.resolve("registry-data"), address));
        Path log = dir.resolve("registry.log");
        process = Processes.start(List.of("docker-registry", "serve", config.toString()), Map.of(), log);
        explained(() -> await("docker-registry to answer on " + address, Duration.ofSeconds(30))
                .failFast("docker-registry on " + address + " exited", () -> !process.isAlive())
                .ignoreExceptionsInstanceOf(IOException.class)
                .until(() -> Http.get(URI.create("http://" + address + "/v2/")).statusCode() == 200),
                () -> "its log: " + Files.readString(log));
    }

    /** The tags the registry holds for {@code repository} (e.g. visit-counter-web), as its JSON. */
    public String tags(String repository) throws IOException {
        return Http.get(URI.create("http://" + address + "/v2/" + repository + "/tags/list")).body();
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        process.waitFor();
    }
}

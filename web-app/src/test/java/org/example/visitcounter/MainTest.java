package org.example.visitcounter;

import static org.example.visitcounter.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The process as people run it: its exit codes, its error lines, its graceful stop. */
class MainTest {
    private static final Pattern RETRIED = Pattern.compile("(?m)^redis_retries_total\\{replica=\"main-test\"} [1-9]");

    @RegisterExtension
    static final RealRedis redis = new RealRedis();

    @Test
    void badConfigurationEndsStartUpWithOneLinePerProblemAndNoStackTrace(@TempDir Path dir) throws Exception {
        Process process = start(dir, Map.of("PORT", "eighty", "REDIS_URL", "http://redis"));
        assertTrue(process.waitFor(30, TimeUnit.SECONDS));
        assertEquals(2, process.exitValue());
        List<String> lines = Files.readAllLines(dir.resolve("out.log"), StandardCharsets.UTF_8);
        assertEquals(List.of(
                "visit-counter: configuration error: PORT=\"eighty\" is not valid: expected a whole number from 1 to 65535",
                "visit-counter: configuration error: REDIS_URL=\"http://redis\" is not valid: expected "
                        + "redis://[user:password@]host[:port][/db] or rediss://... for TLS (unknown scheme \"http\")"),
                lines);
    }

    @Test
    void sigtermFinishesTheRequestInFlightThenExitsZero(@TempDir Path dir) throws Exception {
        int port = RealRedis.freePort();
        Process process = start(dir, Map.of("PORT", Integer.toString(port), "REDIS_URL", redis.url(),
                "REDIS_TIMEOUT_MS", "300", "REQUEST_DEADLINE_MS", "1500", "REPLICA_NAME", "main-test"));
        try {
            var http = new TestApp.Http("http://127.0.0.1:" + port);
            awaitReady(http, process);

            redis.freeze(); // the next request waits on Redis until its deadline
            CompletableFuture<HttpResponse<String>> inFlight = CompletableFuture.supplyAsync(() -> {
                try {
                    return http.get("/");
                } catch (IOException | InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            // In flight at the service: its first attempt timed out on the frozen Redis and is retried.
            await("the request to reach the service", Duration.ofSeconds(10)).until(() -> RETRIED.matcher(
                    http.get("/metrics").body()).find());
            process.destroy(); // SIGTERM
            HttpResponse<String> answer = inFlight.get(10, TimeUnit.SECONDS);
            redis.thaw();

            assertEquals(503, answer.statusCode(), "the request in flight got its answer, not a reset connection");
            assertTrue(process.waitFor(10, TimeUnit.SECONDS), "stopped within a few seconds");
            assertEquals(0, process.exitValue());
        } finally {
            redis.thaw();
            process.destroyForcibly();
        }
    }

    private static Process start(Path dir, Map<String, String> env) throws IOException {
        var builder = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), Main.class.getName())
                .redirectErrorStream(true);
        builder.environment().clear();
        builder.environment().putAll(env); // and nothing else: no LANG, as in a bare container
        builder.redirectOutput(dir.resolve("out.log").toFile());
        return builder.start();
    }

    private static void awaitReady(TestApp.Http http, Process process) {
        await("the service to answer /readyz 200", Duration.ofSeconds(30))
                .failFast("the service exited during start-up", () -> !process.isAlive())
                .ignoreExceptionsInstanceOf(IOException.class).until(() -> http.get("/readyz").statusCode() == 200);
    }
}

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Time from a replica's process start to its first 200 for GET /, for bench/run.sh. Starts the
 * command (which must listen on PORT, from the environment), polls every 2 ms, prints
 * {@code startup_ms=N}, stops the process with SIGTERM and waits for it.
 *
 * <p>A JVM of its own rather than curl in a shell loop: polling forks nothing, so the probe
 * takes almost no CPU from the replica it is timing.
 *
 * <p>Usage: {@code java bench/StartupProbe.java LOG_FILE COMMAND...}
 */
public class StartupProbe {
    private static final Duration LIMIT = Duration.ofSeconds(60);

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: java StartupProbe.java LOG_FILE COMMAND...");
            System.exit(2);
        }
        URI page = URI.create("http://127.0.0.1:" + System.getenv("PORT") + "/");
        List<String> command = Arrays.asList(args).subList(1, args.length);
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
        HttpRequest get = HttpRequest.newBuilder(page).timeout(Duration.ofSeconds(5)).build();
        // Warm the probe's own HTTP path (a refused connection) before the clock starts.
        try {
            http.send(get, HttpResponse.BodyHandlers.discarding());
            System.err.println("StartupProbe: something already answers on " + page);
            System.exit(1);
        } catch (IOException expected) {
            // nothing listens yet
        }

        var builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(new File(args[0])));
        long start = System.nanoTime();
        Process replica = builder.start();
        try {
            while (true) {
                try {
                    if (http.send(get, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                        break;
                    }
                } catch (IOException notYet) {
                    // not listening yet
                }
                if (!replica.isAlive()) {
                    throw new IllegalStateException("the replica exited with status " + replica.exitValue() + "; see " + args[0]);
                }
                if (System.nanoTime() - start > LIMIT.toNanos()) {
                    throw new IllegalStateException("no 200 within " + LIMIT.toSeconds() + " s; see " + args[0]);
                }
                Thread.sleep(2);
            }
            System.out.println("startup_ms=" + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        } finally {
            replica.destroy(); // SIGTERM: a graceful stop
            if (!replica.waitFor(30, TimeUnit.SECONDS)) {
                replica.destroyForcibly();
            }
        }
    }
}

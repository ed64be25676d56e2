package org.example.visitcounter;

import io.javalin.Javalin;
import io.javalin.testtools.JavalinTest;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/** The real app from the real factory, against a given Redis, with test-sized timeouts. */
final class TestApp {
    final Settings settings;
    final Metrics metrics;

    private TestApp(Map<String, String> env) {
        this.settings = Settings.fromEnv(env);
        this.metrics = new Metrics(settings.replicaName());
    }

    /** Short timeouts so fault tests run in seconds; {@code overrides} are NAME, value pairs. */
    static TestApp against(String redisUrl, String... overrides) {
        var env = new HashMap<>(Map.of(
                "REDIS_URL", redisUrl,
                "REPLICA_NAME", "test-replica",
                "REDIS_TIMEOUT_MS", "300",
                "REQUEST_DEADLINE_MS", "1500",
                "REDIS_RETRY_INITIAL_MS", "20",
                "REDIS_RETRY_MAX_DELAY_MS", "200"));
        for (int i = 0; i + 1 < overrides.length; i += 2) {
            env.put(overrides[i], overrides[i + 1]);
        }
        return new TestApp(env);
    }

    interface Body {
        void run(Http http) throws Exception;
    }

    /** Starts the app on a free port, runs {@code body}, then stops the app and closes its Redis pool. */
    void test(Body body) {
        try (var counter = new VisitCounter(settings, metrics)) {
            counter.start();
            Javalin app = VisitCounterApp.create(settings, counter, metrics);
            JavalinTest.test(app, (server, client) -> body.run(new Http(client.getOrigin())));
        }
    }

    /** A plain JDK HTTP client bound to one origin. */
    static final class Http {
        private static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        final String origin;

        Http(String origin) {
            this.origin = origin;
        }

        HttpResponse<String> get(String path, String... headers) throws IOException, InterruptedException {
            return send("GET", path, headers);
        }

        HttpResponse<String> post(String path, String... headers) throws IOException, InterruptedException {
            return send("POST", path, headers);
        }

        HttpResponse<String> postBody(String path, String body) throws IOException, InterruptedException {
            return send("POST", path, HttpRequest.BodyPublishers.ofString(body));
        }

        HttpResponse<String> send(String method, String path, String... headers) throws IOException, InterruptedException {
            return send(method, path, HttpRequest.BodyPublishers.noBody(), headers);
        }

        private HttpResponse<String> send(String method, String path, HttpRequest.BodyPublisher body, String... headers)
                throws IOException, InterruptedException {
            var request = HttpRequest.newBuilder(URI.create(origin + path))
                    .timeout(Duration.ofSeconds(10))
                    .method(method, body);
            if (headers.length > 0) {
                request.headers(headers);
            }
            return CLIENT.send(request.build(), HttpResponse.BodyHandlers.ofString());
        }
    }
}

package org.example.visitcounter;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.concurrent.TimeUnit;

/** The service's Prometheus metrics, served at /metrics. */
final class Metrics {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Counter visitsCounted;
    private final Counter visitsRepeated;
    private final Counter redisRetries;
    private final Meter.MeterProvider<Timer> requests;

    Metrics(String replica) {
        registry.config().commonTags("replica", replica); // before any meter exists
        visitsCounted = Counter.builder("visits.counted").description("Visits counted by this replica").register(registry);
        visitsRepeated = Counter.builder("visits.deduplicated")
                .description("Requests whose id was already counted (nginx fail-over or a retry): answered, not counted again")
                .register(registry);
        redisRetries = Counter.builder("redis.retries").description("Redis calls retried after a transient failure").register(registry);
        // Built once: per request only the tags are looked up, not a whole builder and its histogram config.
        requests = Timer.builder("http.server.requests")
                .description("HTTP requests by route and status")
                .publishPercentileHistogram()
                .withRegistry(registry);
    }

    void visit(boolean repeat) {
        (repeat ? visitsRepeated : visitsCounted).increment();
    }

    void redisRetry() {
        redisRetries.increment();
    }

    void redisError(Throwable error) {
        registry.counter("redis.errors", "type", error.getClass().getSimpleName()).increment();
    }

    void request(String method, String route, int status, float millis) {
        requests.withTags("method", method, "route", route, "status", Integer.toString(status))
                .record((long) (millis * 1_000_000), TimeUnit.NANOSECONDS);
    }

    String scrape() {
        return registry.scrape();
    }
}

package org.example.visitcounter;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/** The service's Prometheus metrics, served at /metrics. */
final class Metrics {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Counter visitsCounted;
    private final Counter visitsRepeated;
    private final Counter redisRetries;
    private final Meter.MeterProvider<Timer> requests;
    /**
     * The timer of each (method, route, status) seen, so that a request records into it directly:
     * the provider builds a new histogram configuration on every lookup, a visible share of a
     * request's CPU (bench/RESULTS.md). Bounded: methods, routes and statuses are small fixed sets.
     */
    private final Map<List<String>, Timer> requestTimers = new ConcurrentHashMap<>();

    Metrics(String replica) {
        registry.config().commonTags("replica", replica); // before any meter exists
        visitsCounted = Counter.builder("visits.counted").description("Visits counted by this replica").register(registry);
        visitsRepeated = Counter.builder("visits.deduplicated")
                .description("Requests whose id was already counted (nginx fail-over or a retry): answered, not counted again")
                .register(registry);
        redisRetries = Counter.builder("redis.retries").description("Redis calls retried after a transient failure").register(registry);
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
        requestTimers.computeIfAbsent(List.of(method, route, Integer.toString(status)),
                        key -> requests.withTags("method", key.get(0), "route", key.get(1), "status", key.get(2)))
                .record((long) (millis * 1_000_000), TimeUnit.NANOSECONDS);
    }

    String scrape() {
        return registry.scrape();
    }
}

package org.example.visitcounter.stack.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.example.visitcounter.Settings;

/**
 * Steady load with exact bookkeeping: {@code connections} workers, each with its own HTTP/1.1
 * client (one kept-alive connection), sending {@code GET /} and every third a {@code POST
 * /api/visits} (nginx's {@code non_idempotent} failover), back to back or (a {@link Scenario}'s
 * {@code pace}) one every {@code pace}, for at most {@link #MAX_PACED_RUN}.
 *
 * <p>Unlike wrk, which abandons the requests in flight at its deadline, {@link #stop()} lets every
 * request finish and records it, so Redis's total can be compared with the 2xx exactly. The client
 * timeout (20 s) is well above nginx's worst case (a 5 s read timeout, 3 attempts within 7 s).
 *
 * <p>Like a browser (RFC 9112 section 9.3.1), a request on a kept-alive connection that the server
 * closed before answering a byte (nginx does on a reload) is sent once more, and recorded: it never
 * reached a replica, so nothing counts twice (the exact Redis total checks that).
 */
public final class LoadClient implements AutoCloseable {
    public static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(20);
    public static final Duration MAX_PACED_RUN = Duration.ofMinutes(10);

    /** One request: when it ran (System.nanoTime), what came back. status -1 = a client-side error. */
    public record Sample(String method, long startNanos, long endNanos, int status, long visitCount, String servedBy,
            String retryAfter, String error, int retries) {
        public boolean ok() {
            return status / 100 == 2;
        }

        public long latencyMillis() {
            return (endNanos - startNanos) / 1_000_000;
        }

        @Override
        public String toString() {
            return method + " " + status + (error != null ? " " + error : "") + " after " + latencyMillis() + " ms"
                    + (servedBy != null ? " from " + servedBy : "") + (retries > 0 ? " (retried)" : "");
        }
    }

    private final URI base;
    private final int connections;
    /** Null: back to back. */
    private final Duration pace;
    private final ConcurrentLinkedQueue<Sample> samples = new ConcurrentLinkedQueue<>();
    private final List<Thread> workers = new ArrayList<>();
    private volatile boolean stopping;

    private LoadClient(URI base, int connections, Duration pace) {
        this.base = base;
        this.connections = connections;
        this.pace = pace;
        for (int i = 0; i < connections; i++) {
            int id = i;
            workers.add(Thread.ofPlatform().name("load-" + i).daemon().start(() -> work(id)));
        }
    }

    /** Starts {@code connections} workers against {@code base} (nginx's URL), back to back. */
    public static LoadClient start(URI base, int connections) {
        return new LoadClient(base, connections, null);
    }

    private void work(int id) {
        try (HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build()) {
            long begin = System.nanoTime();
            long last = pace == null ? Long.MAX_VALUE : MAX_PACED_RUN.toNanos() / pace.toNanos();
            for (long n = id; !stopping && n < last; n++) {
                if (pace != null) {
                    LockSupport.parkNanos(begin + n * pace.toNanos() - System.nanoTime());
                }
                samples.add(send(http, n % 3 == 2 ? "POST" : "GET"));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** {@code GET /} or {@code POST /api/visits}, sent again once where the server closed the connection first. */
    private Sample send(HttpClient http, String method) throws InterruptedException {
        var request = HttpRequest.newBuilder(base.resolve(method.equals("POST") ? "/api/visits" : "/"))
                .timeout(CLIENT_TIMEOUT).method(method, HttpRequest.BodyPublishers.noBody()).build();
        long start = System.nanoTime();
        for (int retries = 0; ; retries++) {
            try {
                HttpResponse<Void> r = http.send(request, HttpResponse.BodyHandlers.discarding());
                var h = r.headers();
                return new Sample(method, start, System.nanoTime(), r.statusCode(),
                        h.firstValue("X-Visit-Count").map(Long::parseLong).orElse(-1L),
                        h.firstValue("X-Served-By").orElse(null), h.firstValue("Retry-After").orElse(null), null, retries);
            } catch (IOException e) {
                // The JDK client's words for "the server closed the connection before any byte of a response".
                if (retries > 0 || !String.valueOf(e.getMessage()).contains("received no bytes")) {
                    return new Sample(method, start, System.nanoTime(), -1, -1, null, null, e.toString(), retries);
                }
            }
        }
    }

    public List<Sample> samples() {
        return List.copyOf(samples);
    }

    public Result result() {
        return new Result(connections, samples());
    }

    /** How many finished requests match, so far (for awaiting progress under load). */
    public long count(Predicate<Sample> which) {
        return samples.stream().filter(which).count();
    }

    /** Stops starting requests, lets every worker finish the one it is in (at most the client timeout), returns all. */
    public Result stop() {
        stopping = true;
        for (Thread worker : workers) {
            try {
                if (!worker.join(CLIENT_TIMEOUT.plusSeconds(10))) {
                    throw new IllegalStateException(worker.getName() + " did not finish its request in time");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        return result();
    }

    @Override
    public void close() {
        if (!stopping) {
            stop();
        }
    }

    public record Result(int connections, List<Sample> samples) {
        public long ok() {
            return samples.stream().filter(Sample::ok).count();
        }

        public List<Sample> failures() {
            return samples.stream().filter(s -> !s.ok()).toList();
        }

        /** Non-2xx outcomes by status ("error" for client-side errors such as a reset). */
        public Map<String, Long> failuresByStatus() {
            return failures().stream().collect(Collectors.groupingBy(s -> s.status() < 0 ? "error" : "" + s.status(),
                    TreeMap::new, Collectors.counting()));
        }

        /** Requests sent a second time because the server closed a kept-alive connection first. */
        public long retried() {
            return samples.stream().filter(s -> s.retries() > 0).count();
        }

        public void assertNoFailures(String what) {
            assertEquals(List.of(), failures().stream().limit(20).map(Sample::toString).toList(),
                    what + ": failed requests (" + failuresByStatus() + ")");
        }

        /** nginx stayed up, so it closed no connection under a request: nothing had to be resent. */
        public void assertNothingResent(String what) {
            assertEquals(0, retried(), what + ": requests resent after nginx closed a kept-alive connection");
        }

        /**
         * Redis counted every 2xx, and beyond them at most {@code ambiguous} visits (requests cut
         * off by a fault after Redis may have counted them; 0: exactly the 2xx), and no number was
         * handed out twice.
         */
        public void assertCounted(long counted, long ambiguous, String what) {
            long extra = counted - ok();
            assertTrue(extra >= 0, what + ": acknowledged counts lost: " + -extra);
            assertTrue(extra <= ambiguous, what + ": counted " + extra + " visits that got no 2xx; only " + ambiguous
                    + " requests were in flight at the fault");
            assertEquals(0, duplicateCounts(), what + ": 2xx with a number another 2xx had");
        }

        public String figures(long counted) {
            return String.format("%d conn, %d requests, %d 2xx, non-2xx %s, %d resent, max %d ms, Redis %+d vs 2xx,"
                    + " %d numbers handed out twice", connections, samples.size(), ok(), failuresByStatus(),
                    retried(), samples.stream().mapToLong(Sample::latencyMillis).max().orElse(0), counted - ok(),
                    duplicateCounts());
        }

        /** How many 2xx carried a number another 2xx also carried (0: every visit has its own number). */
        public long duplicateCounts() {
            return ok() - samples.stream().filter(Sample::ok).mapToLong(Sample::visitCount).distinct().count();
        }
    }

    /**
     * The scaffold of every fault scenario: the load ({@code pace} null: back to back) until
     * {@code steady} 2xx, the strike, then {@code then} (which may wait on the load's progress), the
     * load stopped, and Redis's {@code total} read again. A wait that times out says what the load
     * saw and what {@code diagnosis} says.
     */
    public record Scenario(URI base, int connections, Duration pace, long steady, LongSupplier total,
            Callable<String> diagnosis) {
        public static final Duration STEADY_DEADLINE = Duration.ofSeconds(30);

        /** Back to back. */
        public Scenario(URI base, int connections, long steady, LongSupplier total, Callable<String> diagnosis) {
            this(base, connections, null, steady, total, diagnosis);
        }

        public Run run(String name, Runnable strike, Consumer<LoadClient> then) {
            long before = total.getAsLong();
            long loadStart = System.nanoTime();
            try (var load = new LoadClient(base, connections, pace)) {
                Waits.explained(() -> Waits.await(steady + " 2xx (steady load)", STEADY_DEADLINE)
                        .until(() -> load.count(Sample::ok) >= steady), () -> "the load so far: " + load.samples.size()
                        + " requests, non-2xx " + load.result().failuresByStatus() + ", first failures "
                        + load.result().failures().stream().limit(5).toList() + "\n" + diagnosis.call());
                long faultAt = System.nanoTime();
                strike.run();
                long struckAt = System.nanoTime();
                then.accept(load);
                Result result = load.stop();
                var run = new Run(name, result, total.getAsLong() - before, loadStart, faultAt, struckAt);
                System.out.println(name + ": " + result.figures(run.counted()));
                return run;
            }
        }
    }

    /** One scenario: what the load saw, Redis's growth over it, and when (System.nanoTime) the fault struck. */
    public record Run(String name, Result result, long counted, long loadStart, long faultAt, long struckAt) {
        /** The replicas' defaults (web-app Settings), as the stacks run them. */
        public static final Settings DEFAULTS = Settings.fromEnv(Map.of("REPLICA_NAME", "load"));
        /**
         * The slowest answer allowed while Redis is away: REQUEST_DEADLINE_MS, then 503, plus 1 s
         * for the 503 itself, nginx and a loaded 2-core machine.
         */
        public static final Duration OUTAGE_LIMIT = DEFAULTS.retry().deadline().plusSeconds(1);

        /**
         * Failed requests in flight at some moment while the fault struck (started by its end,
         * finished after its start): Redis may have counted them, then gone before replying.
         */
        public long ambiguous() {
            return result.failures().stream().filter(s -> s.startNanos() <= struckAt && s.endNanos() >= faultAt).count();
        }

        /** A replica or nginx struck: nothing failed or was resent, and Redis counted exactly the 2xx. */
        public void assertLossless() {
            result.assertNoFailures(name);
            result.assertNothingResent(name);
            result.assertCounted(counted, 0, name);
        }

        /**
         * Redis struck: only 503 with Retry-After (never 500/502/504 or a reset), at least one, none
         * slower than {@link #OUTAGE_LIMIT}, nothing resent, and Redis counted the 2xx plus at most
         * the {@link #ambiguous} requests.
         */
        public void assertOutage() {
            assertEquals(List.of(), result.failures().stream().filter(s -> s.status() != 503 || s.retryAfter() == null)
                    .limit(20).map(Sample::toString).toList(), name + ": failures other than 503 with Retry-After");
            assertFalse(result.failures().isEmpty(), name + ": no 503 at all: did the fault happen?");
            assertEquals(List.of(), result.samples().stream().filter(s -> s.latencyMillis() > OUTAGE_LIMIT.toMillis())
                    .limit(20).map(Sample::toString).toList(), name + ": answers slower than " + OUTAGE_LIMIT);
            result.assertNothingResent(name);
            result.assertCounted(counted, ambiguous(), name);
        }
    }
}

package org.example.visitcounter;

import io.javalin.Javalin;
import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;
import io.javalin.http.HttpStatus;
import io.javalin.http.staticfiles.Location;
import java.io.IOException;
import java.util.Map;
import org.eclipse.jetty.http.HttpException;
import org.eclipse.jetty.http.UriCompliance;
import org.example.visitcounter.RedisRetry.RedisUnavailableException;
import org.example.visitcounter.RedisVisits.Tally;
import org.example.visitcounter.RedisVisits.Visit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Builds the HTTP service, unstarted: {@code Main} starts it, tests drive the same factory. */
public final class VisitCounterApp {
    private static final Logger log = LoggerFactory.getLogger(VisitCounterApp.class);
    static final String SERVED_BY = "X-Served-By";
    static final String VISIT_COUNT = "X-Visit-Count";
    /** nginx/proxy.conf's client_max_body_size. */
    static final long MAX_BODY_BYTES = 16 * 1024;

    private final VisitCounter counter;
    private final Metrics metrics;

    private VisitCounterApp(VisitCounter counter, Metrics metrics) {
        this.counter = counter;
        this.metrics = metrics;
    }

    static Javalin create(Settings settings, VisitCounter counter, Metrics metrics) {
        var app = new VisitCounterApp(counter, metrics);
        return Javalin.create(config -> {
            config.routes.before(ctx -> ctx.header(SERVED_BY, counter.replica()));
            config.routes.get("/", app::page);
            config.routes.post("/api/visits", app::countVisit);
            config.routes.get("/api/visits", app::readVisits);
            config.routes.get("/healthz", ctx -> ctx.result("ok"));
            config.routes.get("/readyz", app::readiness);
            config.routes.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(metrics.scrape()));

            config.routes.exception(RedisUnavailableException.class, app::unavailable);
            // Jetty's verdicts on a body it could not read (bad chunk framing, early end).
            config.routes.exception(HttpException.RuntimeException.class, VisitCounterApp::malformed);
            config.routes.exception(IOException.class, VisitCounterApp::malformed);
            config.routes.exception(Exception.class, VisitCounterApp::unexpected);
            config.requestLogger.http(app::record);
            configureServer(config, settings);
        });
    }

    /** How Jetty and Javalin serve: graceful stop, nginx's limits, static files. */
    private static void configureServer(JavalinConfig config, Settings settings) {
        config.startup.showJavalinBanner = false;
        config.http.prefer405over404 = true;
        // Jetty's graceful stop, through its connectors: stop accepting, send every response
        // still to go with "Connection: close", close idle keep-alive connections, and wait up
        // to the stop timeout for requests in flight. Not GracefulHandler: it answers 503 to a
        // request that arrives on a kept-alive connection during the stop, which nginx passes
        // on to the client (it does not fail over on 503, see nginx/proxy.conf).
        config.jetty.modifyServer(server -> server.setStopTimeout(settings.shutdownGrace().toMillis()));
        // A replica answers the same as nginx in front of it would, for whoever reaches it
        // directly: Jetty's default URI rules (Javalin relaxes them to LEGACY) refuse a
        // userinfo or an ambiguous path with 400, and no body is bigger than nginx's
        // client_max_body_size.
        config.jetty.modifyHttpConfiguration(http -> http.setUriCompliance(UriCompliance.DEFAULT));
        config.http.maxRequestSize = MAX_BODY_BYTES;
        // Javalin copies each response through a new buffer of this size, by default Jetty's
        // whole 32 KB output buffer: most of the bytes a request allocated (bench/RESULTS.md).
        // The page is about 1 KB; a larger response (/metrics) just takes more turns of the copy loop.
        config.http.responseBufferSize = 1024;
        config.staticFiles.add(files -> {
            files.hostedPath = "/static";
            if (settings.staticDir().isPresent()) { // the dev container syncs edits here
                files.directory = settings.staticDir().get().toString();
                files.location = Location.EXTERNAL;
            } else {
                files.directory = "/public";
                files.location = Location.CLASSPATH;
            }
        });
    }

    private void page(Context ctx) {
        Visit visit = counter.count(RequestIds.fromHeader(ctx.header(RequestIds.HEADER)));
        counted(ctx, visit).contentType("text/html; charset=utf-8").result(VisitPage.render(visit, counter.replica()));
    }

    private void countVisit(Context ctx) {
        // No body is needed, but one that is too big (413) or malformed (400) is refused
        // before anything is counted, not left unread.
        ctx.bodyAsBytes();
        String requestId = RequestIds.fromHeader(ctx.header(RequestIds.HEADER));
        Visit visit = counter.count(requestId);
        counted(ctx, visit).json(new VisitJson(visit.number(), counter.replica(), requestId, visit.repeat(), visit.byReplica()));
    }

    /** The JSON of a counted visit, its fields in this order. */
    private record VisitJson(long count, String servedBy, String requestId, boolean repeat, Map<String, Long> replicas) {}

    private void readVisits(Context ctx) {
        Tally tally = counter.read();
        ctx.header("Cache-Control", "no-store")
                .json(Map.of("total", tally.total(), "replicas", tally.byReplica(), "servedBy", counter.replica()));
    }

    private void readiness(Context ctx) {
        boolean ready = counter.ready();
        ctx.status(ready ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).result(ready ? "ready" : "Redis is not answering");
    }

    private void unavailable(RedisUnavailableException e, Context ctx) {
        ctx.status(HttpStatus.SERVICE_UNAVAILABLE)
                .header("Retry-After", Long.toString(counter.retryAfterSeconds()))
                .header("Cache-Control", "no-store")
                .result("The visit counter cannot reach its database right now. Please try again in a moment.");
    }

    private static void malformed(Exception e, Context ctx) {
        ctx.status(HttpStatus.BAD_REQUEST).result("Malformed request.");
    }

    private static void unexpected(Exception e, Context ctx) {
        log.error("Unexpected error serving {} {}", ctx.method(), ctx.path(), e);
        ctx.status(HttpStatus.INTERNAL_SERVER_ERROR).result("Something went wrong on our side.");
    }

    /** Metrics by matched route, so that there is one series per route and not one per URL tried. */
    private void record(Context ctx, float millis) {
        var endpoint = ctx.endpoint();
        String route = endpoint == null || endpoint.path.equals("*") ? "other" : endpoint.path;
        metrics.request(ctx.method().name(), route, ctx.statusCode(), millis);
    }

    private static Context counted(Context ctx, Visit visit) {
        return ctx.header(VISIT_COUNT, Long.toString(visit.number())).header("Cache-Control", "no-store");
    }
}

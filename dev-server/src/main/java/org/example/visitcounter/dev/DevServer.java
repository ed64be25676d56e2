package org.example.visitcounter.dev;

import io.javalin.Javalin;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.Security;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.LocalConnector;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/**
 * The dev image's command. One Jetty server owns the listening socket for the life of the JVM; every
 * change of the synced sources is compiled in-process ({@link Compiler}) and loaded into a fresh
 * class loader, its app built by the same factory as production (through the wiring class
 * {@code DevApp}) and started on a socket-less connector; the listening server then hands new
 * requests to the new app, and the old one is closed once its requests in flight are done. No
 * connection is ever refused, so nginx never skips a replica.
 */
public final class DevServer implements AutoCloseable {
    static final String BANNER_PATH = "/dev-server/banner.css";
    private static final Duration POLL = Duration.ofMillis(100);
    private static final Duration DRAIN = Duration.ofSeconds(10);

    private final Compiler compiler;
    private final Map<String, String> env;
    private final Server server = new Server();
    private final HttpConfiguration http = new HttpConfiguration();
    private final AtomicReference<Build> current = new AtomicReference<>();
    private volatile String errors = "";
    private String built;
    private int reloads;
    private volatile Thread watcher;

    /** Not a static field: main() points logback at the synced configuration before the first logger. */
    private static Logger log() {
        return LoggerFactory.getLogger(DevServer.class);
    }

    public DevServer(Compiler compiler, Map<String, String> env, String host, int port) {
        this.compiler = compiler;
        this.env = env;
        var connector = new ServerConnector(server, new HttpConnectionFactory(http));
        connector.setHost(host);
        connector.setPort(port);
        server.addConnector(connector);
        server.setHandler(new Swap());
    }

    /** Builds the sources once, then listens; a build that fails here leaves only the banner to serve. */
    public DevServer start() throws Exception {
        reload(compiler.fingerprint());
        server.start();
        return this;
    }

    /** Polls the synced sources; the compose sync keeps the host's mtimes, so by content. */
    public DevServer watch() {
        watcher = Thread.ofPlatform().name("dev-server-watch").daemon().start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                try {
                    Thread.sleep(POLL);
                    reloadIfChanged();
                } catch (InterruptedException e) {
                    return;
                } catch (Exception e) {
                    log().error("Reload failed; the previous build keeps serving", e);
                }
            }
        });
        return this;
    }

    public int port() {
        return ((ServerConnector) server.getConnectors()[0]).getLocalPort();
    }

    /** The compile errors the page shows (empty when the last build compiled). */
    public String errors() {
        return errors;
    }

    public int reloads() {
        return reloads;
    }

    /** Builds again if the sources changed since the last build; true if it did. */
    public synchronized boolean reloadIfChanged() throws Exception {
        String now = compiler.fingerprint();
        if (now.equals(built)) {
            return false;
        }
        // One sync copies several files: build once the tree has stopped changing.
        String settled;
        while (!(settled = compiler.fingerprint()).equals(now)) {
            now = settled;
            Thread.sleep(POLL);
        }
        reload(settled);
        return true;
    }

    private synchronized void reload(String fingerprint) throws Exception {
        long started = System.nanoTime();
        Compiler.Result result = compiler.compile(fingerprint);
        built = result.fingerprint();
        if (!result.ok()) {
            errors = result.errors();
            System.out.println("dev-server: compile error, the previous build keeps serving:");
            System.out.println(result.errors());
            return;
        }
        errors = "";
        Build next = Build.load(result, env);
        // The app's HTTP rules (URI compliance, ...) on the socket that receives its requests.
        next.app.unsafe.jettyInternal.httpConfigurationConfigs.forEach(config -> config.accept(http));
        Build old = current.getAndSet(next);
        reloads++;
        log().info("dev-server: build {} serving {} ms after the change was seen ({} ms compiling)", reloads,
                (System.nanoTime() - started) / 1_000_000, result.millis());
        if (old != null) {
            old.close();
        }
    }

    @Override
    public synchronized void close() throws Exception {
        if (watcher != null) {
            watcher.interrupt();
            watcher.join(Duration.ofSeconds(5));
        }
        server.stop();
        Build last = current.getAndSet(null);
        if (last != null) {
            last.close();
        }
    }

    /** The listening server's one handler: the current build's, or the banner stylesheet. */
    private final class Swap extends Handler.Abstract {
        @Override
        public boolean handle(Request request, Response response, Callback callback) throws Exception {
            if (BANNER_PATH.equals(Request.getPathInContext(request))) {
                response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/css; charset=utf-8");
                response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
                response.write(true, StandardCharsets.UTF_8.encode(Banner.css(errors)), callback);
                return true;
            }
            Build build = enter();
            if (build == null) {
                Response.writeError(request, response, callback, HttpStatus.SERVICE_UNAVAILABLE_503, "no build yet");
                return true;
            }
            Callback done = Callback.from(callback, build.inflight::decrementAndGet);
            try {
                if (!build.handler.handle(request, response, done)) {
                    Response.writeError(request, response, done, HttpStatus.NOT_FOUND_404);
                }
                return true;
            } catch (Throwable t) {
                build.inflight.decrementAndGet();
                throw t;
            }
        }

        /** The current build, counted in flight; a build swapped out meanwhile is not used. */
        private Build enter() {
            while (true) {
                Build build = current.get();
                if (build == null) {
                    return null;
                }
                build.inflight.incrementAndGet();
                if (current.get() == build) {
                    return build;
                }
                build.inflight.decrementAndGet();
            }
        }
    }

    /** One build: its class loader, its app (started on a socket-less connector) and what it holds. */
    private record Build(BuildClassLoader loader, Javalin app, Handler handler, List<AutoCloseable> closers,
            AtomicInteger inflight) {
        static Build load(Compiler.Result result, Map<String, String> env) throws Exception {
            var loader = new BuildClassLoader(result.classes(), result.resources(), DevServer.class.getClassLoader());
            Thread thread = Thread.currentThread();
            ClassLoader previous = thread.getContextClassLoader();
            thread.setContextClassLoader(loader);
            List<AutoCloseable> closers = new ArrayList<>();
            try {
                Javalin app = (Javalin) loader.loadClass("org.example.visitcounter.DevApp")
                        .getMethod("create", Map.class, List.class).invoke(null, env, closers);
                // Requests come through the dev server's socket: Javalin's own Jetty gets a local
                // connector only (Javalin adds its default socket connector only when there is none).
                app.unsafe.jettyInternal.connectors.add((server, http) -> new LocalConnector(server));
                app.start();
                return new Build(loader, app, app.jettyServer().server().getHandler(), closers, new AtomicInteger());
            } catch (InvocationTargetException e) {
                closeAll(closers);
                loader.close();
                throw e.getCause() instanceof Exception cause ? cause : e;
            } finally {
                thread.setContextClassLoader(previous);
            }
        }

        /** After the requests in flight (bounded), like Jetty's graceful stop: then Jetty, Redis, the loader. */
        void close() throws IOException {
            long deadline = System.nanoTime() + DRAIN.toNanos();
            while (inflight.get() > 0 && System.nanoTime() < deadline) {
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            app.stop();
            closeAll(closers);
            loader.close();
        }

        private static void closeAll(List<AutoCloseable> closers) {
            for (AutoCloseable closer : closers) {
                try {
                    closer.close();
                } catch (Exception e) {
                    log().warn("Closing the previous build", e);
                }
            }
        }
    }

    /**
     * {@code java ... org.example.visitcounter.dev.DevServer}: sources under {@code dev.sources}
     * (java/ and resources/), compiled output under {@code dev.shared}, {@code --release dev.release}.
     */
    public static void main(String[] args) throws Exception {
        // As Main does, before any lookup (see there).
        Security.setProperty("networkaddress.cache.ttl", "5");
        Security.setProperty("networkaddress.cache.negative.ttl", "0");
        Path sources = Path.of(System.getProperty("dev.sources", "/app/src/main"));
        // The dev server's own lines in the app's format until the first build configures logback
        // (DevApp), instead of logback's default: everything at DEBUG.
        System.setProperty("logback.configurationFile", sources.resolve("resources/logback.xml").toString());
        System.setProperty("visitcounter.log.level", System.getenv().getOrDefault("LOG_LEVEL", "INFO").toUpperCase());
        Path shared = Path.of(System.getProperty("dev.shared", "/run/dev-shared"));
        var compiler = new Compiler(sources.resolve("java"), sources.resolve("resources"), shared,
                System.getProperty("dev.release", "21"));
        Map<String, String> env = System.getenv();
        var dev = new DevServer(compiler, env, env.getOrDefault("HOST", "0.0.0.0"),
                Integer.parseInt(env.getOrDefault("PORT", "8080")));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                dev.close();
            } catch (Exception e) {
                log().warn("Stopping", e);
            }
        }, "shutdown"));
        Signal.handle(new Signal("TERM"), signal -> System.exit(0));
        Signal.handle(new Signal("INT"), signal -> System.exit(0));
        dev.start().watch();
        log().info("dev-server listening on port {}, watching {}", dev.port(), sources);
    }
}

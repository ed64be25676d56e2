package org.example.visitcounter;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.joran.JoranConfigurator;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.javalin.router.Endpoint;
import java.util.List;
import java.util.Map;
import org.slf4j.LoggerFactory;

/**
 * What {@code Main} does, for one build of the dev server: compiled with the app's sources into each
 * build's class loader, so that every class it names is that build's. The dev server calls
 * {@link #create} by reflection and starts the returned app on a socket-less connector.
 */
public final class DevApp {
    /** The dev server's stylesheet that shows a compile error on the page (empty otherwise). */
    static final String BANNER = "<link rel=\"stylesheet\" href=\"/dev-server/banner.css\">";

    private DevApp() {}

    public static Javalin create(Map<String, String> env, List<AutoCloseable> closers) throws Exception {
        Settings settings = Settings.fromEnv(env);
        System.setProperty("visitcounter.log.level", settings.logLevel());
        configureLogging(settings.logFormat() == Settings.LogFormat.JSON ? "logback-json.xml" : "logback.xml");
        var metrics = new Metrics(settings.replicaName());
        var counter = new VisitCounter(settings, metrics);
        closers.add(counter::close);
        Javalin app = VisitCounterApp.create(settings, counter, metrics);
        app.unsafe.internalRouter.addHttpEndpoint(new Endpoint(HandlerType.AFTER, "*", DevApp::linkBanner));
        counter.start();
        return app;
    }

    /** The synced logging configuration, read again on every build (logback lives in the parent loader). */
    private static void configureLogging(String file) throws Exception {
        var context = (LoggerContext) LoggerFactory.getILoggerFactory();
        context.reset();
        var configurator = new JoranConfigurator();
        configurator.setContext(context);
        configurator.doConfigure(DevApp.class.getClassLoader().getResource(file));
    }

    /** Links the page to the banner stylesheet: a file of our own origin, so the strict CSP stays. */
    private static void linkBanner(Context ctx) {
        String type = ctx.res().getContentType(); // (ctx.contentType() is the request's)
        String html = type != null && type.startsWith("text/html") ? ctx.result() : null;
        if (html != null && html.contains("</head>")) {
            ctx.result(html.replace("</head>", BANNER + "</head>"));
        }
    }
}

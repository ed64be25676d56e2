package org.example.visitcounter;

import io.javalin.Javalin;
import java.security.Security;
import org.example.visitcounter.Settings.SettingsException;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/** Reads the settings, wires the parts and starts the service. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        // Docker's DNS answers change as containers come and go (Redis restarted, a Swarm task
        // moved): keep a name for 5 s, not the JVM's 30, and never keep a failed lookup (10 s by
        // default: a replica would wait that long to find a Redis that is back). Before any lookup.
        Security.setProperty("networkaddress.cache.ttl", "5");
        Security.setProperty("networkaddress.cache.negative.ttl", "0");
        Settings settings;
        try {
            settings = Settings.fromEnv(System.getenv());
        } catch (SettingsException e) {
            e.problems().forEach(problem -> System.err.println("visit-counter: configuration error: " + problem));
            System.exit(2);
            return;
        }
        // Read by logback when the first logger is made, which is after this.
        if (settings.logFormat() == Settings.LogFormat.JSON) {
            System.setProperty("logback.configurationFile", "logback-json.xml");
        }
        System.setProperty("visitcounter.log.level", settings.logLevel());

        var metrics = new Metrics(settings.replicaName());
        var counter = new VisitCounter(settings, metrics);
        Javalin app = VisitCounterApp.create(settings, counter, metrics);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            app.stop(); // graceful: finishes requests in flight within SHUTDOWN_GRACE_MS
            counter.close();
            LoggerFactory.getLogger(Main.class).info("Stopped");
        }, "shutdown"));
        // Exit 0 on a requested stop (docker stop, Ctrl-C): it is not a failure.
        Signal.handle(new Signal("TERM"), signal -> System.exit(0));
        Signal.handle(new Signal("INT"), signal -> System.exit(0));

        counter.start();
        app.start(settings.host(), settings.port());
        LoggerFactory.getLogger(Main.class).info("visit-counter replica {} listening on {}:{}, Redis at {}",
                settings.replicaName(), settings.host(), settings.port(), settings.redis());
    }
}

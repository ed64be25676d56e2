import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import io.javalin.Javalin;
import java.net.URI;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.RedisClient;

/**
 * The framework's floor, for bench/run.sh: the least a Javalin 7 + Jedis 8 replica can do per
 * visit. GET / increments one Redis key and answers about 100 bytes of HTML; /readyz and
 * /healthz let scripts/local-stack.sh run it like the real replica (HOST, PORT, REPLICA_NAME,
 * REDIS_URL from the environment). No request ids, no dedupe script, no tallies, no metrics,
 * no security headers, no retries: what the real service adds on top is what the benchmark's
 * ours / floor ratio prices. Never a template for a service.
 */
public final class FloorApp {
    public static void main(String[] args) {
        // Without a configuration file, logback logs everything at DEBUG: Jetty's lines per request.
        ((Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME)).setLevel(Level.WARN);
        URI redisUrl = URI.create(System.getenv().getOrDefault("REDIS_URL", "redis://127.0.0.1:6379"));
        String name = System.getenv().getOrDefault("REPLICA_NAME", "floor");
        RedisClient redis = RedisClient.builder()
                .hostAndPort(new HostAndPort(redisUrl.getHost(), redisUrl.getPort()))
                .build();
        Javalin app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.routes.get("/", ctx -> ctx.html("<!doctype html><title>floor</title><p>Visit "
                    + redis.incr("floor:total") + ", served by " + name + ".</p>\n"));
            config.routes.get("/healthz", ctx -> ctx.result("ok"));
            config.routes.get("/readyz", ctx -> ctx.result(redis.ping()));
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            app.stop();
            redis.close();
        }));
        app.start(System.getenv().getOrDefault("HOST", "127.0.0.1"),
                Integer.parseInt(System.getenv().getOrDefault("PORT", "8080")));
    }
}

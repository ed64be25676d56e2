package peer;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.data.redis.core.StringRedisTemplate;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * The Spring Boot peer: one INCR per visit and a page of about 100 bytes, like bench/FloorApp.java,
 * with Boot's defaults everywhere else. HOST, PORT, REPLICA_NAME and REDIS_URL come from the
 * environment (application.properties), as scripts/local-stack.sh sets them for a replica.
 */
@SpringBootApplication
@RestController
public class PeerApplication {
    private final StringRedisTemplate redis;
    private final String name;

    PeerApplication(StringRedisTemplate redis, @Value("${REPLICA_NAME:peer}") String name) {
        this.redis = redis;
        this.name = name;
    }

    @GetMapping(value = "/", produces = "text/html;charset=utf-8")
    String visit() {
        return "<!doctype html><title>peer</title><p>Visit " + redis.opsForValue().increment("peer:total")
                + ", served by " + name + ".</p>\n";
    }

    @GetMapping("/healthz")
    String healthz() {
        return "ok";
    }

    @GetMapping("/readyz")
    String readyz() {
        return redis.execute((org.springframework.data.redis.core.RedisCallback<String>) c -> c.ping());
    }

    public static void main(String[] args) {
        SpringApplication.run(PeerApplication.class, args);
    }
}

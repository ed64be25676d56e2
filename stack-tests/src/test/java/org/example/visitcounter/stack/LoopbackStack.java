package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.example.visitcounter.stack.support.RedisProcess;

/**
 * The stack on loopback: scripts/local-stack.sh, given a Redis of the test's own
 * ({@link RedisProcess}, AOF fsync always) as REDIS_URL, because the script never restarts its Redis.
 */
final class LoopbackStack implements Stack {
    private final RedisProcess redis;
    private final LocalStack stack;
    private final Map<String, Long> killed = new HashMap<>();

    private LoopbackStack(RedisProcess redis, LocalStack stack) {
        this.redis = redis;
        this.stack = stack;
    }

    static LoopbackStack start() {
        RedisProcess redis = RedisProcess.start("always");
        try {
            return new LoopbackStack(redis, LocalStack.start(Map.of("REDIS_URL", redis.url())));
        } catch (RuntimeException | Error e) {
            redis.close();
            throw e;
        }
    }

    LocalStack local() {
        return stack;
    }

    RedisProcess redis() {
        return redis;
    }

    @Override
    public URI uri(String path) {
        return stack.uri(path);
    }

    @Override
    public List<String> replicas() {
        return stack.replicaNames();
    }

    @Override
    public void killReplica(String name) {
        long pid = stack.pid(name);
        killed.put(name, pid);
        stack.signal(pid, "KILL");
    }

    @Override
    public void startReplica(String name) {
        Long old = killed.remove(name);
        if (old == null) {
            throw new IllegalStateException(name + " was not killed");
        }
        // local-stack.sh's supervisor restarts a replica that died; wait for it, then for /readyz.
        stack.waitForPidChange(name, old, Duration.ofSeconds(30));
        assertFalse(LocalStack.isAlive(old), name + "'s killed JVM (pid " + old + ") is still alive");
        assertTrue(stack.output().contains(name + " restarted"), stack::output);
        stack.awaitReady(name, LocalStack.READY_TIMEOUT);
    }

    @Override
    public void stopRedis() {
        redis.terminate();
    }

    @Override
    public void startRedis() {
        redis.startAgain("always");
    }

    @Override
    public void freezeRedis() {
        redis.freeze();
    }

    @Override
    public void thawRedis() {
        redis.thaw();
    }

    @Override
    public void restartKeepingData() {
        stopRedis();
        startRedis();
    }

    @Override
    public void reloadNginx() {
        stack.signal(stack.pid("nginx"), "HUP");
    }

    @Override
    public long redisTotal() {
        return redis.total();
    }

    @Override
    public void close() {
        try {
            stack.stop(); // asserts exit status 0 and no process left behind
        } finally {
            redis.close();
        }
    }
}

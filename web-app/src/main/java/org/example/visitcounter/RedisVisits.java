package org.example.visitcounter;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.commons.pool2.impl.GenericObjectPoolConfig;
import org.example.visitcounter.Settings.RedisSettings;
import redis.clients.jedis.AbstractTransaction;
import redis.clients.jedis.Connection;
import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.RedisClient;
import redis.clients.jedis.Response;
import redis.clients.jedis.exceptions.JedisNoScriptException;

/**
 * Redis access: the counting script, the read of the tallies, and PING. One attempt each; the
 * caller decides about retries ({@link RedisRetry}).
 */
public final class RedisVisits implements AutoCloseable {

    // One hash tag, so every key lands in the same slot should this ever run on Redis Cluster.
    /** The total of visits: the tests of the whole stack read it from Redis too. */
    public static final String TOTAL_KEY = "{visits}:total";
    static final String TALLY_KEY = "{visits}:by-replica";
    /**
     * The markers of the requests counted, by the window they were counted in and a shard of their
     * id: {@code {visits}:r:<window number>:<shard>}, a hash of request id to number. A few dozen
     * markers to a hash keep it in Redis's compact encoding, a fraction of a key per marker
     * (docs/redis-memory.md); with {@value #MARKER_SHARDS} shards, a 15 s window's hashes stay
     * that small up to ~35,000 counts a second. The window number names the hashes: every replica
     * must run with the same window.
     */
    static final String MARKERS_PREFIX = "{visits}:r:";
    static final int MARKER_SHARDS = 4096;
    /** Added to a hash of markers' life, for clocks of hosts that differ by up to as much. */
    static final Duration CLOCK_MARGIN = Duration.ofSeconds(1);
    /** The error code the script answers with when it ran after its caller gave up. */
    static final String TOO_LATE = "TOOLATE";

    private static final String SCRIPT = loadScript("/count-visit.lua");
    private static final String SCRIPT_SHA = sha1(SCRIPT);

    private final RedisClient redis;
    private final Duration timeout;

    RedisVisits(RedisSettings settings) {
        this.timeout = settings.timeout();
        var client = DefaultJedisClientConfig.builder()
                .connectionTimeoutMillis((int) timeout.toMillis())
                .socketTimeoutMillis((int) timeout.toMillis())
                .database(settings.database())
                .ssl(settings.tls())
                .clientName("visit-counter");
        settings.user().ifPresent(client::user);
        settings.password().ifPresent(client::password);
        var pool = new GenericObjectPoolConfig<Connection>();
        pool.setMaxTotal(settings.poolSize());
        pool.setMaxIdle(settings.poolSize());
        pool.setMaxWait(timeout); // never queue for a connection longer than a call may take
        // Nothing reads JMX here (metrics go to /metrics), and registering the pool would build
        // the platform MBean server, a visible share of start-up (bench/RESULTS.md).
        pool.setJmxEnabled(false);
        this.redis = RedisClient.builder()
                .hostAndPort(new HostAndPort(settings.host(), settings.port()))
                .clientConfig(client.build())
                .poolConfig(pool)
                .build();
    }

    /**
     * Counts a visit for {@code requestId} unless that id was counted within {@code window}, in
     * which case the first number comes back marked as a repeat.
     */
    Visit count(String requestId, String replica, Duration window) {
        long now = System.currentTimeMillis();
        // Redis refuses to count once half the timeout has passed: the other half is the margin
        // for the reply's trip and for clock skew between this host and Redis's.
        long giveUpAt = now + timeout.toMillis() / 2;
        // A marker is looked for in this window's hash and the last one's, so it is found for at
        // least one window after it was written; a hash lives two windows from its first marker.
        long windowNumber = now / window.toMillis();
        String shard = ":" + Integer.toHexString(Math.floorMod(requestId.hashCode(), MARKER_SHARDS));
        List<String> keys = List.of(TOTAL_KEY, TALLY_KEY,
                MARKERS_PREFIX + windowNumber + shard, MARKERS_PREFIX + (windowNumber - 1) + shard);
        List<String> args = List.of(replica, requestId, Long.toString(window.multipliedBy(2).plus(CLOCK_MARGIN).toMillis()),
                Long.toString(giveUpAt));
        Object reply;
        try {
            reply = redis.evalsha(SCRIPT_SHA, keys, args);
        } catch (JedisNoScriptException e) { // a new or restarted Redis: EVAL also caches it
            reply = redis.eval(SCRIPT, keys, args);
        }
        List<?> parts = (List<?>) reply;
        return new Visit((Long) parts.get(0), ((Long) parts.get(1)) == 1L, tallies((List<?>) parts.get(2)));
    }

    /** The total and the tallies, read together in one transaction, counting nothing. */
    Tally read() {
        try (AbstractTransaction tx = redis.multi()) {
            Response<String> total = tx.get(TOTAL_KEY);
            Response<Map<String, String>> byReplica = tx.hgetAll(TALLY_KEY);
            tx.exec();
            var tallies = new TreeMap<String, Long>();
            byReplica.get().forEach((name, n) -> tallies.put(name, Long.parseLong(n)));
            return new Tally(total.get() == null ? 0 : Long.parseLong(total.get()), tallies);
        }
    }

    void ping() {
        redis.ping();
    }

    @Override
    public void close() {
        redis.close();
    }

    private static Map<String, Long> tallies(List<?> flat) {
        var tallies = new TreeMap<String, Long>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            tallies.put(String.valueOf(flat.get(i)), Long.parseLong(String.valueOf(flat.get(i + 1))));
        }
        return tallies;
    }

    private static String loadScript(String resource) {
        try (InputStream in = RedisVisits.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(resource + " is missing from the class path");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String sha1(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-1").digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One counted (or repeated) visit: its number and every replica's tally just after it. */
    record Visit(long number, boolean repeat, Map<String, Long> byReplica) {}

    /** The total so far and every replica's share of it. */
    record Tally(long total, Map<String, Long> byReplica) {}
}

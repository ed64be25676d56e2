package org.example.visitcounter;

import static org.example.visitcounter.Settings.Variable.*;

import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * Everything the service reads from its environment ({@link Variable}), parsed and checked once
 * at start-up.
 */
public record Settings(
        String host,
        int port,
        String replicaName,
        RedisSettings redis,
        RetrySettings retry,
        Duration dedupeWindow,
        Optional<Path> staticDir,
        LogFormat logFormat,
        String logLevel,
        Duration shutdownGrace) {

    public enum LogFormat { PLAIN, JSON }

    /** Where Redis is and how long one call to it may take. */
    public record RedisSettings(
            String host, int port, boolean tls, int database,
            Optional<String> user, Optional<String> password,
            Duration timeout, int poolSize) {

        @Override
        public String toString() { // never print the password
            return (tls ? "rediss://" : "redis://") + host + ":" + port + "/" + database;
        }
    }

    /**
     * Exponential backoff with full jitter: the wait before retry n is uniform in
     * [0, min(maxDelay, initialDelay * multiplier^(n-1))], and no retry starts after the deadline.
     */
    public record RetrySettings(Duration initialDelay, double multiplier, Duration maxDelay, Duration deadline) {}

    /**
     * Every variable the service reads and its default (none: unset means absent, or for
     * REPLICA_NAME the host name). docs/configuration.md's table lists the same; SettingsTest
     * checks that it does. DEDUPE_WINDOW_SECONDS's 15 is nginx's failover budget (7 s) +
     * REQUEST_DEADLINE_MS + REDIS_TIMEOUT_MS + a 5 s margin, rounded up (TimeoutContractTest,
     * docs/behaviour.md).
     */
    public enum Variable {
        HOST("0.0.0.0"), PORT("8080"), REPLICA_NAME(null), REDIS_URL("redis://redis:6379"), REDIS_PASSWORD_FILE(null),
        REDIS_TIMEOUT_MS("500"), REDIS_POOL_SIZE("16"), REQUEST_DEADLINE_MS("2000"), REDIS_RETRY_INITIAL_MS("50"),
        REDIS_RETRY_MULTIPLIER("2.0"), REDIS_RETRY_MAX_DELAY_MS("1000"), DEDUPE_WINDOW_SECONDS("15"), STATIC_DIR(null),
        LOG_FORMAT("plain"), LOG_LEVEL("INFO"), SHUTDOWN_GRACE_MS("5000");

        private final String fallback;

        Variable(String fallback) {
            this.fallback = fallback;
        }

        public Optional<String> fallback() {
            return Optional.ofNullable(fallback);
        }
    }

    public static Settings fromEnv(Map<String, String> env) {
        var p = new Parser(env);
        String host = p.get(HOST, Parser::host);
        Integer port = p.get(PORT, Parser::port);
        Optional<String> replica = p.optional(REPLICA_NAME, Parser::replicaName);
        RedisUrl url = p.get(REDIS_URL, RedisUrl::parse);
        Optional<String> passwordFromFile = p.optional(REDIS_PASSWORD_FILE, Parser::readSecret);
        Duration redisTimeout = p.get(REDIS_TIMEOUT_MS, v -> Parser.millis(v, 1, 60_000));
        Integer poolSize = p.get(REDIS_POOL_SIZE, v -> Parser.integer(v, 1, 1024));
        Duration deadline = p.get(REQUEST_DEADLINE_MS, v -> Parser.millis(v, 1, 300_000));
        Duration initial = p.get(REDIS_RETRY_INITIAL_MS, v -> Parser.millis(v, 1, 60_000));
        Double multiplier = p.get(REDIS_RETRY_MULTIPLIER, Parser::multiplier);
        Duration maxDelay = p.get(REDIS_RETRY_MAX_DELAY_MS, v -> Parser.millis(v, 1, 300_000));
        Duration dedupe = p.get(DEDUPE_WINDOW_SECONDS, v -> Duration.ofSeconds(Parser.integer(v, 1, 86_400)));
        Optional<Path> staticDir = p.optional(STATIC_DIR, Parser::directory);
        LogFormat logFormat = p.get(LOG_FORMAT, Parser::logFormat);
        String logLevel = p.get(LOG_LEVEL, Parser::logLevel);
        Duration grace = p.get(SHUTDOWN_GRACE_MS, v -> Parser.millis(v, 0, 300_000));

        if (url != null && url.password().isPresent() && passwordFromFile.isPresent()) {
            p.errors.add(REDIS_PASSWORD_FILE + " and a password in " + REDIS_URL
                    + " are both set: give the password in one place only");
        }
        if (initial != null && maxDelay != null && initial.compareTo(maxDelay) > 0) {
            p.errors.add(REDIS_RETRY_INITIAL_MS + "=" + initial.toMillis() + " is larger than " + REDIS_RETRY_MAX_DELAY_MS + "="
                    + maxDelay.toMillis() + ": expected the first delay to be at most the cap");
        }
        if (redisTimeout != null && deadline != null && redisTimeout.compareTo(deadline) > 0) {
            p.errors.add(REDIS_TIMEOUT_MS + "=" + redisTimeout.toMillis() + " is larger than " + REQUEST_DEADLINE_MS + "="
                    + deadline.toMillis() + ": expected the deadline to leave room for at least one Redis call");
        }
        if (dedupe != null && deadline != null && redisTimeout != null && dedupe.compareTo(deadline.plus(redisTimeout)) < 0) {
            // The service's own retries repeat a request within its deadline, the last one's Redis
            // call within one more timeout: a shorter window would count some of them twice.
            p.errors.add(DEDUPE_WINDOW_SECONDS + "=" + dedupe.toSeconds() + " is shorter than " + REQUEST_DEADLINE_MS + " + "
                    + REDIS_TIMEOUT_MS + " (" + deadline.plus(redisTimeout).toMillis() + " ms): expected a window that"
                    + " outlasts the service's own retries");
        }
        if (!p.errors.isEmpty()) {
            throw new SettingsException(p.errors);
        }
        var redis = new RedisSettings(url.host(), url.port(), url.tls(), url.database(), url.user(),
                url.password().or(() -> passwordFromFile), redisTimeout, poolSize);
        return new Settings(host, port, replica.orElseGet(Settings::hostName), redis,
                new RetrySettings(initial, multiplier, maxDelay, deadline), dedupe, staticDir, logFormat, logLevel, grace);
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return Optional.ofNullable(System.getenv("HOSTNAME")).orElse("unknown");
        }
    }

    /** Bad configuration: one line per offending variable, each naming the value and what was expected. */
    public static final class SettingsException extends RuntimeException {
        private final List<String> problems;

        SettingsException(List<String> problems) {
            super(String.join("; ", problems));
            this.problems = List.copyOf(problems);
        }

        public List<String> problems() {
            return problems;
        }
    }

    /** Collects every problem instead of stopping at the first, so one start-up shows them all. */
    private static final class Parser {
        private final Map<String, String> env;
        private final List<String> errors = new ArrayList<>();

        Parser(Map<String, String> env) {
            this.env = env;
        }

        <T> T get(Variable name, Function<String, T> parse) {
            String raw = env.get(name.name());
            String value = raw == null || raw.isBlank() ? name.fallback : raw.trim();
            if (value == null) {
                return null;
            }
            try {
                return parse.apply(value);
            } catch (IllegalArgumentException e) {
                errors.add(name + "=" + quote(value) + " is not valid: expected " + e.getMessage());
                return null;
            }
        }

        <T> Optional<T> optional(Variable name, Function<String, T> parse) {
            return Optional.ofNullable(get(name, parse));
        }

        private static String quote(String value) {
            String redacted = value.replaceAll("(?<=//)[^/@]*@", "***@"); // a URL's user:password
            String shown = redacted.length() > 80 ? redacted.substring(0, 80) + "..." : redacted;
            return "\"" + shown.replaceAll("\\p{Cntrl}", "?") + "\"";
        }

        static int integer(String value, int min, int max) {
            long n;
            try {
                n = Long.parseLong(value);
            } catch (NumberFormatException e) {
                n = Long.MIN_VALUE;
            }
            if (n < min || n > max) {
                throw new IllegalArgumentException("a whole number from " + min + " to " + max);
            }
            return (int) n;
        }

        static String host(String value) {
            // An address literal or a name; Jetty resolves it when it binds.
            if (!value.matches("[A-Za-z0-9.:%_-]{1,253}")) {
                throw new IllegalArgumentException("an IP address or host name to listen on, e.g. 0.0.0.0 or 127.0.0.1");
            }
            return value;
        }

        static int port(String value) {
            return integer(value, 1, 65_535);
        }

        static Duration millis(String value, int min, int max) {
            try {
                return Duration.ofMillis(integer(value, min, max));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("milliseconds as " + e.getMessage());
            }
        }

        static double multiplier(String value) {
            double d;
            try {
                d = Double.parseDouble(value);
            } catch (NumberFormatException e) {
                d = Double.NaN;
            }
            if (!(d >= 1.0 && d <= 10.0)) {
                throw new IllegalArgumentException("a number from 1.0 to 10.0");
            }
            return d;
        }

        static String replicaName(String value) {
            if (!value.matches("[A-Za-z0-9._-]{1,64}")) {
                throw new IllegalArgumentException("1 to 64 characters of A-Z a-z 0-9 . _ -");
            }
            return value;
        }

        static LogFormat logFormat(String value) {
            return switch (value.toLowerCase()) {
                case "plain" -> LogFormat.PLAIN;
                case "json" -> LogFormat.JSON;
                default -> throw new IllegalArgumentException("plain or json");
            };
        }

        static String logLevel(String value) {
            String upper = value.toUpperCase();
            if (!Set.of("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF").contains(upper)) {
                throw new IllegalArgumentException("one of TRACE, DEBUG, INFO, WARN, ERROR, OFF");
            }
            return upper;
        }

        static Path directory(String value) {
            Path path = Path.of(value);
            if (!Files.isDirectory(path)) {
                throw new IllegalArgumentException("an existing directory");
            }
            return path;
        }

        static String readSecret(String value) {
            try {
                String secret = Files.readString(Path.of(value)).strip();
                if (secret.isEmpty()) {
                    throw new IllegalArgumentException("a readable file holding the Redis password (the file is empty)");
                }
                return secret;
            } catch (IOException e) {
                throw new IllegalArgumentException("a readable file holding the Redis password");
            }
        }
    }

    /** {@code redis://[user:password@]host[:port][/db]} or {@code rediss://…} for TLS. */
    record RedisUrl(String host, int port, boolean tls, int database, Optional<String> user, Optional<String> password) {
        private static final String EXPECTED = "redis://[user:password@]host[:port][/db] or rediss://... for TLS";

        static RedisUrl parse(String value) {
            URI uri;
            try {
                uri = new URI(value);
            } catch (URISyntaxException e) {
                throw new IllegalArgumentException(EXPECTED);
            }
            String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase();
            if (!scheme.equals("redis") && !scheme.equals("rediss")) {
                throw new IllegalArgumentException(EXPECTED + " (unknown scheme \"" + scheme + "\")");
            }
            if (uri.getHost() == null || uri.getHost().isEmpty()) {
                throw new IllegalArgumentException(EXPECTED + " (host or port is malformed)");
            }
            if (uri.getPort() == 0 || uri.getPort() > 65_535) {
                throw new IllegalArgumentException(EXPECTED + " (port must be 1 to 65535)");
            }
            int database = 0;
            String path = uri.getPath() == null ? "" : uri.getPath();
            if (!path.isEmpty() && !path.equals("/")) {
                try {
                    database = Parser.integer(path.substring(1), 0, 15);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(EXPECTED + " (db must be a number from 0 to 15)");
                }
            }
            if (uri.getQuery() != null || uri.getFragment() != null) {
                throw new IllegalArgumentException(EXPECTED + " (no query or fragment)");
            }
            Optional<String> user = Optional.empty();
            Optional<String> password = Optional.empty();
            if (uri.getRawUserInfo() != null) {
                String[] parts = uri.getRawUserInfo().split(":", 2);
                if (parts.length == 2) {
                    user = Optional.of(decode(parts[0])).filter(s -> !s.isEmpty());
                    password = Optional.of(decode(parts[1])).filter(s -> !s.isEmpty());
                } else {
                    password = Optional.of(decode(parts[0])).filter(s -> !s.isEmpty()); // redis://secret@host
                }
            }
            return new RedisUrl(uri.getHost(), uri.getPort() < 0 ? 6379 : uri.getPort(), scheme.equals("rediss"),
                    database, user, password);
        }

        private static String decode(String s) {
            return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
        }
    }
}

package org.example.visitcounter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.example.visitcounter.Settings.SettingsException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SettingsTest {
    /**
     * docs/configuration.md's table, read as a table: a row's first cell is the variable, its second
     * the default in backticks, or words where there is none ("—", "the host name").
     */
    @Test
    void configurationPageListsEveryVariableWithItsDefault() throws IOException {
        Path page = Path.of("../docs/configuration.md");
        assumeTrue(Files.exists(page), "no ../docs/configuration.md (the image's test stage copies web-app/src only)");
        var listed = new TreeMap<String, Optional<String>>();
        for (List<String> row : tableRows(Files.readAllLines(page), List.of("variable", "default", "meaning"))) {
            String name = unquote(row.get(0)).orElseThrow(() -> new AssertionError("not a `NAME`: " + row));
            assertNull(listed.put(name, unquote(row.get(1))), "configuration.md lists it twice: " + name);
        }
        var variables = new TreeMap<String, Optional<String>>();
        for (Settings.Variable v : Settings.Variable.values()) {
            variables.put(v.name(), v.fallback());
        }
        assertEquals(variables, listed, "docs/configuration.md's table against Settings.Variable");
    }

    /** The body rows, as trimmed cells, of the one Markdown table whose header row is {@code header}. */
    private static List<List<String>> tableRows(List<String> lines, List<String> header) {
        int at = lines.stream().map(SettingsTest::cells).toList().indexOf(header);
        assertTrue(at >= 0, "no table headed " + header);
        // The line after the header is the |---| delimiter row; the table ends at the first line that is no row.
        var rows = new ArrayList<List<String>>();
        for (String line : lines.subList(at + 2, lines.size())) {
            if (!line.startsWith("|")) {
                break;
            }
            List<String> row = cells(line);
            assertEquals(header.size(), row.size(), "cells in " + line);
            rows.add(row);
        }
        return rows;
    }

    private static List<String> cells(String line) {
        String row = line.strip();
        if (!row.startsWith("|") || !row.endsWith("|") || row.length() < 2) {
            return List.of();
        }
        return Arrays.stream(row.substring(1, row.length() - 1).split("\\|", -1)).map(String::strip).toList();
    }

    /** `text` → text; a cell that is not one code span has no value. */
    private static Optional<String> unquote(String cell) {
        return cell.length() > 2 && cell.startsWith("`") && cell.endsWith("`") && cell.indexOf('`', 1) == cell.length() - 1
                ? Optional.of(cell.substring(1, cell.length() - 1))
                : Optional.empty();
    }

    @Test
    void defaultsWorkUnderCompose() {
        Settings s = Settings.fromEnv(Map.of());
        assertEquals("0.0.0.0", s.host(), "every interface: a container's port is reached from outside it");
        assertEquals(8080, s.port());
        assertEquals("redis", s.redis().host());
        assertEquals(6379, s.redis().port());
        assertFalse(s.redis().tls());
        assertEquals(0, s.redis().database());
        assertEquals(Duration.ofMillis(500), s.redis().timeout());
        assertEquals(Duration.ofMillis(2000), s.retry().deadline());
        assertEquals(Duration.ofSeconds(15), s.dedupeWindow());
        assertEquals(Settings.LogFormat.PLAIN, s.logFormat());
        assertEquals(Optional.empty(), s.staticDir());
        assertFalse(s.replicaName().isBlank(), "the host name stands in for REPLICA_NAME");
    }

    @Test
    void readsAFullRedisUrl() {
        Settings s = Settings.fromEnv(Map.of("REDIS_URL", "rediss://app:p%40ss@cache.example:6380/3"));
        assertEquals("cache.example", s.redis().host());
        assertEquals(6380, s.redis().port());
        assertTrue(s.redis().tls());
        assertEquals(3, s.redis().database());
        assertEquals(Optional.of("app"), s.redis().user());
        assertEquals(Optional.of("p@ss"), s.redis().password());
        assertFalse(s.redis().toString().contains("p@ss"), "the password never reaches a log line");
    }

    @Test
    void readsThePasswordFromAFile(@TempDir Path dir) throws IOException {
        Path secret = Files.writeString(dir.resolve("redis_password"), "s3cret\n");
        Settings s = Settings.fromEnv(Map.of("REDIS_PASSWORD_FILE", secret.toString()));
        assertEquals(Optional.of("s3cret"), s.redis().password());
    }

    @ParameterizedTest(name = "{0}={1}")
    @CsvSource(delimiter = '|', textBlock = """
            HOST                     | any host!            | an IP address or host name to listen on
            PORT                     | abc                  | a whole number from 1 to 65535
            PORT                     | 0                    | a whole number from 1 to 65535
            PORT                     | 70000                | a whole number from 1 to 65535
            REDIS_URL                | http://redis:6379    | unknown scheme "http"
            REDIS_URL                | redis://:6379        | host or port is malformed
            REDIS_URL                | redis://redis:99999  | port must be 1 to 65535
            REDIS_URL                | redis://redis:0      | port must be 1 to 65535
            REDIS_URL                | redis://redis/16     | db must be a number from 0 to 15
            REDIS_URL                | redis://redis/x      | db must be a number from 0 to 15
            REDIS_URL                | redis://redis?db=1   | no query or fragment
            REDIS_URL                | not a url            | redis://[user:password@]host[:port][/db]
            REDIS_TIMEOUT_MS         | -5                   | milliseconds as a whole number from 1 to 60000
            REDIS_POOL_SIZE          | 0                    | a whole number from 1 to 1024
            REDIS_RETRY_INITIAL_MS   | 1.5                  | milliseconds as a whole number from 1 to 60000
            REDIS_RETRY_MULTIPLIER   | 0.5                  | a number from 1.0 to 10.0
            REDIS_RETRY_MULTIPLIER   | fast                 | a number from 1.0 to 10.0
            REDIS_RETRY_MAX_DELAY_MS | 0                    | milliseconds as a whole number from 1 to 300000
            REQUEST_DEADLINE_MS      | forever              | milliseconds as a whole number from 1 to 300000
            DEDUPE_WINDOW_SECONDS    | 0                    | a whole number from 1 to 86400
            LOG_FORMAT               | xml                  | plain or json
            LOG_LEVEL                | LOUD                 | one of TRACE, DEBUG, INFO, WARN, ERROR, OFF
            REPLICA_NAME             | web 1                | 1 to 64 characters of A-Z a-z 0-9 . _ -
            STATIC_DIR               | /no/such/dir         | an existing directory
            REDIS_PASSWORD_FILE      | /no/such/file        | a readable file holding the Redis password
            SHUTDOWN_GRACE_MS        | -1                   | milliseconds as a whole number from 0 to 300000
            """)
    void rejectsABadValueNamingTheVariableTheValueAndWhatIsExpected(String name, String value, String expected) {
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of(name, value)));
        assertEquals(1, e.problems().size(), e.getMessage());
        String problem = e.problems().getFirst();
        assertTrue(problem.startsWith(name + "=\"" + value + "\" is not valid: expected "), problem);
        assertTrue(problem.contains(expected), problem);
    }

    @Test
    void reportsEveryBadVariableAtOnce() {
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of("PORT", "x", "LOG_FORMAT", "x")));
        assertEquals(2, e.problems().size());
    }

    @Test
    void neverEchoesAPassword() {
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of("REDIS_URL", "redis://u:hunter2@redis/99")));
        assertFalse(e.getMessage().contains("hunter2"), e.getMessage());
        assertTrue(e.getMessage().contains("redis://***@redis/99"), e.getMessage());
    }

    @Test
    void rejectsAnEmptyPasswordFile(@TempDir Path dir) throws IOException {
        Path empty = Files.writeString(dir.resolve("empty"), "\n");
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of("REDIS_PASSWORD_FILE", empty.toString())));
        assertTrue(e.getMessage().contains("the file is empty"), e.getMessage());
    }

    @Test
    void rejectsAPasswordGivenTwice(@TempDir Path dir) throws IOException {
        Path secret = Files.writeString(dir.resolve("pw"), "a");
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of(
                "REDIS_URL", "redis://:b@redis", "REDIS_PASSWORD_FILE", secret.toString())));
        assertTrue(e.getMessage().contains("give the password in one place only"), e.getMessage());
    }

    @Test
    void rejectsAFirstDelayAboveTheCap() {
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of(
                "REDIS_RETRY_INITIAL_MS", "500", "REDIS_RETRY_MAX_DELAY_MS", "100")));
        assertTrue(e.getMessage().contains("expected the first delay to be at most the cap"), e.getMessage());
    }

    @Test
    void rejectsADeadlineShorterThanOneRedisCall() {
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of(
                "REDIS_TIMEOUT_MS", "3000", "REQUEST_DEADLINE_MS", "1000")));
        assertTrue(e.getMessage().contains("leave room for at least one Redis call"), e.getMessage());
    }

    @Test
    void rejectsADedupeWindowTheServicesOwnRetriesOutlast() {
        var e = assertThrows(SettingsException.class, () -> Settings.fromEnv(Map.of(
                "DEDUPE_WINDOW_SECONDS", "2", "REQUEST_DEADLINE_MS", "2000", "REDIS_TIMEOUT_MS", "500")));
        assertTrue(e.getMessage().contains("outlasts the service's own retries"), e.getMessage());
        assertEquals(Duration.ofSeconds(3), Settings.fromEnv(Map.of(
                "DEDUPE_WINDOW_SECONDS", "3", "REQUEST_DEADLINE_MS", "2000", "REDIS_TIMEOUT_MS", "500")).dedupeWindow());
    }
}

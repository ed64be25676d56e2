package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.example.visitcounter.stack.support.Waits.explained;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.example.visitcounter.stack.support.DocCommands;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.PageViews;
import org.example.visitcounter.stack.support.Ports;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The development loop of docs/development.md on the real engine, in both forms on one stack: first
 * {@code up --build -d --wait} then the standalone {@code watch}, then {@code up --build --watch}.
 * Edits of the repository's own files, each undone afterwards: a stylesheet, each edit kind of #14
 * (median and worst of five printed at the end), a compile error, and the pom.
 */
@Tag("docker")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ComposeDevLoopTest {
    private static final int REPLICAS = 3;
    /** Each edit kind is saved (and undone) this many times: its figure is the median. */
    private static final int ROUNDS = 5;
    /** Seconds until every replica served the save, per edit kind, in the order measured. */
    private static final Map<String, List<Double>> SERVED_AFTER = new LinkedHashMap<>();
    private static final Path STYLESHEET = Path.of("web-app/src/main/resources/public/style.css");
    private static final Path PAGE = Path.of("web-app/src/main/java/org/example/visitcounter/VisitPage.java");
    private static final Path POM = Path.of("web-app/pom.xml");
    private static final Path NEW_CLASS = Path.of("web-app/src/main/java/org/example/visitcounter/DevLoopMarker.java");
    private static final Path LUA = Path.of("web-app/src/main/resources/count-visit.lua");
    private static final Path LOGBACK = Path.of("web-app/src/main/resources/logback.xml");
    private static final String LABEL = "<p class=\"label\">This page has been visited</p>";
    /** A compile error as javac reports it: file:line: message. */
    private static final String FILE_LINE = "(?s).*VisitPage\\.java:\\d+: .*";
    /** Compose's prefix of a replica's log line, once its terminal codes (colours, erase line) are gone. */
    private static final Pattern REPLICA = Pattern.compile("^\\s*(web-\\d+)\\s*\\|");

    @TempDir
    static Path tmp;

    private static ComposeStack stack;
    private static Process watch;
    private static Path watchLog;
    private static int jdwp;

    @BeforeAll
    static void startStackThenWatch() {
        jdwp = Ports.freeBlock(REPLICAS);
        // The standalone form first, on a stack started apart (docs/development.md), then the attached form.
        stack = ComposeStack.up(DocCommands.DEV_UP, Map.of("COMPOSE_FILE", "compose.yaml:dev.compose.yaml",
                "REDIS_DEV_PORT", Integer.toString(Ports.freeBlock(1)), "JDWP_PORTS", jdwp + "-" + (jdwp + REPLICAS - 1)));
        startWatching("watch.log", DocCommands.DEV_WATCH);
    }

    /** Starts a watch form; Compose starts watching once the stack is up, and a change before that would be missed. */
    private static void startWatching(String logName, String command) {
        watchLog = tmp.resolve(logName);
        watch = stack.cli.start(watchLog, command);
        awaitTrue(ComposeStack.BUILD_TIMEOUT, "nginx serving GET /api/visits",
                () -> Http.status(stack.uri("/api/visits")) == 200);
        awaitTrue(Duration.ofSeconds(60), "compose watch watching", () -> log().contains("Watch enabled"));
    }

    @AfterAll
    static void stop() throws Exception {
        SERVED_AFTER.forEach((kind, seconds) -> {
            List<Double> sorted = seconds.stream().sorted().toList();
            System.out.printf("dev loop: %-45s median %.1f s, max %.1f s over %d saves%n", kind,
                    sorted.get(sorted.size() / 2), sorted.getLast(), sorted.size());
        });
        if (watch != null) {
            watch.destroy();
            watch.waitFor();
        }
        if (stack != null) {
            stack.close();
        }
    }

    @Test
    @Order(-1)
    void theStandaloneWatchServesAnEditAndTheBannerNamesACompileError() throws Exception {
        try {
            String marker = "visited (" + System.nanoTime() + ")";
            editAndUndo("a method body (standalone watch)", "a method body, undone (standalone watch)",
                    new Change().replace(PAGE, LABEL, LABEL.replace("visited", marker)), marker, false);
            // The standalone watch shows Compose's sync log, not the replicas': the page is where the error shows.
            compileErrorShownUntilTheFix("standalone watch", false);
        } finally {
            watch.destroy();
            watch.waitFor();
            startWatching("up-watch.log", DocCommands.WATCH);
        }
    }

    @Test
    @Order(0)
    void pageViewsRotateStrictlyInTheDevOverlayToo() throws Exception {
        PageViews.assertStrictRotation(stack.uri("/"), REPLICAS);
    }

    @Test
    @Order(1)
    void anEditedStylesheetIsServedWithinTwoSeconds() throws Exception {
        String marker = "/* dev-loop " + System.nanoTime() + " */";
        try (var edit = new Change().append(STYLESHEET, "\n" + marker + "\n").apply()) {
            long saved = System.nanoTime();
            awaitTrue(Duration.ofSeconds(2), "the edited stylesheet through nginx",
                    () -> body("/static/style.css").contains(marker));
            System.out.printf("dev loop: stylesheet edit served after %.2f s%n", (System.nanoTime() - saved) / 1e9);
        }
    }

    /** Each edit kind of #14, {@link #ROUNDS} saves each: the edit, then its undo. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("editKinds")
    @Order(2)
    void everyReplicaServesAnEditAndItsUndo(String kind, String undoKind, boolean inBuildLine, EditKind edit)
            throws Exception {
        String marker = "dev-loop-" + System.nanoTime();
        editAndUndo(kind, undoKind, edit.apply(marker), marker, inBuildLine);
    }

    private interface EditKind extends Function<String, Change> {}

    static Stream<Arguments> editKinds() {
        return Stream.of(
                arguments("a method body", "a method body, undone", false, (EditKind) marker -> new Change()
                        .replace(PAGE, LABEL, LABEL.replace("visited", "visited " + marker))),
                // A method, not a constant: javac would copy a constant into VisitPage, leaving no use of the
                // class. Undone in reverse order: VisitPage stops using the class, then the class is deleted.
                arguments("a new class", "a deleted class", false, (EditKind) marker -> new Change()
                        .append(NEW_CLASS, "package org.example.visitcounter;\n\nfinal class DevLoopMarker {\n"
                                + "    static String text() {\n        return \"" + marker + "\";\n    }\n}\n")
                        .replace(PAGE, "return page.append(TAIL)", "return page.append(DevLoopMarker.text()).append(TAIL)")),
                arguments("a changed signature", "a changed signature, undone", false, (EditKind) marker -> new Change()
                        .replace(PAGE, "static String escape(String text) {", "static String escape(String text, String after) {")
                        .replace(PAGE, "return out == null ? text : out.toString();",
                                "return (out == null ? text : out.toString()) + after;")
                        .replace(PAGE, ".append(escape(servedBy))", ".append(escape(servedBy, \" " + marker + "\"))")
                        .replace(PAGE, ".append(escape(e.getKey()))", ".append(escape(e.getKey(), \"\"))")),
                // Observable and harmless: the script's answer gains a tally that is never stored, which the
                // page lists as one more replica.
                arguments("the Lua script", "the Lua script, undone", false, (EditKind) marker -> new Change().replace(LUA,
                        "return {number, 0, redis.call('HGETALL', KEYS[2])}",
                        "local tallies = redis.call('HGETALL', KEYS[2])\n"
                                + "table.insert(tallies, '" + marker + "')\ntable.insert(tallies, '1')\n"
                                + "return {number, 0, tallies}")),
                // Not on the page: each replica's next build logs its "dev-server: build" line in the new pattern.
                arguments("logback.xml", "logback.xml, undone", true, (EditKind) marker -> new Change()
                        .replace(LOGBACK, "%d{HH:mm:ss.SSS} %-5level", "%d{HH:mm:ss.SSS} " + marker + " %-5level")))
                .flatMap(kind -> Collections.nCopies(ROUNDS, kind).stream());
    }

    @Test
    @Order(3)
    void everyReplicasDebuggerPortStillAnswersAfterAReload() throws IOException {
        // JDWP's handshake: the debugger sends these 14 bytes, the JVM's agent echoes them.
        byte[] handshake = "JDWP-Handshake".getBytes(StandardCharsets.US_ASCII);
        for (int port = jdwp; port < jdwp + REPLICAS; port++) {
            try (var socket = new Socket("127.0.0.1", port)) {
                socket.setSoTimeout(5000);
                socket.getOutputStream().write(handshake);
                assertEquals(new String(handshake), new String(socket.getInputStream().readNBytes(handshake.length)),
                        "JDWP handshake on 127.0.0.1:" + port);
            }
        }
    }

    @Test
    @Order(4)
    void aCompileErrorKeepsThePageServingWithABannerUntilTheFix() throws Exception {
        compileErrorShownUntilTheFix("up --watch", true);
    }

    /** The previous build keeps serving, its page links a banner naming the error as file:line:, gone after the fix. */
    private static void compileErrorShownUntilTheFix(String form, boolean inComposeOutput) throws IOException {
        long saved;
        try (var edit = new Change().append(PAGE, "\nclass DevLoopBroken { oops }\n").apply()) {
            saved = System.nanoTime();
            awaitTrue(Duration.ofSeconds(30), "the banner stylesheet naming the error as file:line:",
                    () -> body("/dev-server/banner.css").matches(FILE_LINE));
            System.out.printf("dev loop: compile error shown after %.1f s (%s)%n", (System.nanoTime() - saved) / 1e9, form);
            assertEquals(200, Http.status(stack.uri("/")), "the previous build keeps serving");
            assertTrue(body("/").contains("/dev-server/banner.css"), "the page links the banner");
            if (inComposeOutput) {
                awaitTrue(Duration.ofSeconds(10), "file:line: message in compose's output", () -> log().matches(FILE_LINE));
            }
        }
        saved = System.nanoTime();
        // Gone from every replica: a few answers in a row without it (round robin over 3).
        awaitTrue(Duration.ofSeconds(30), "no banner after the fix", () -> IntStream.range(0, 2 * REPLICAS)
                .noneMatch(i -> body("/dev-server/banner.css").contains("VisitPage.java")));
        System.out.printf("dev loop: banner gone %.1f s after the fix (%s)%n", (System.nanoTime() - saved) / 1e9, form);
    }

    @Test
    @Order(9)
    void aPomChangeRebuildsTheImageAndRecreatesTheReplicas() throws Exception {
        Set<String> before = Set.copyOf(stack.replicas());
        assertEquals(REPLICAS, before.size(), "web containers before: " + before);
        try (var edit = new Change().append(POM, "\n<!-- dev-loop " + System.nanoTime() + " -->\n").apply()) {
            long saved = System.nanoTime();
            awaitTrue(Duration.ofMinutes(5), "new web containers after the rebuild", () -> {
                Set<String> now = Set.copyOf(stack.replicas());
                return now.size() == REPLICAS && now.stream().noneMatch(before::contains);
            });
            awaitTrue(Duration.ofMinutes(2), "the rebuilt stack serving", () -> Http.status(stack.uri("/")) == 200);
            System.out.printf("dev loop: pom.xml edit rebuilt and recreated %d replicas, serving after %.1f s%n",
                    REPLICAS, (System.nanoTime() - saved) / 1e9);
            assertTrue(log().contains("Rebuilding service \"web\""), "compose watch says it rebuilt web");
        }
    }

    /** The change, then its undo, each timed until every replica serves it. */
    private static void editAndUndo(String kind, String undoKind, Change change, String marker, boolean inBuildLine)
            throws Exception {
        try (change) {
            served(kind, change::apply, marker, true, inBuildLine);
            served(undoKind, change::close, marker, false, inBuildLine);
        }
    }

    /**
     * Saves, then GET / every 100 ms (the refresh of a browser) until every replica is seen serving
     * the save: X-Served-By of a page with (or without) the marker, or Compose's prefix of a build line.
     */
    private static void served(String kind, Save save, String marker, boolean present, boolean inBuildLine)
            throws Exception {
        Set<String> replicas = new HashSet<>();
        List<String> failures = new ArrayList<>();
        var answers = new AtomicInteger();
        int logFrom = log().length();
        save.run();
        long saved = System.nanoTime();
        awaitTrue(Duration.ofSeconds(60), "every replica serving " + kind, () -> {
            answers.incrementAndGet();
            try {
                var page = Http.get(stack.uri("/"));
                if (page.statusCode() != 200) {
                    failures.add(page.statusCode() + " " + page.body());
                } else if (!inBuildLine && page.body().contains(marker) == present) {
                    replicas.add(PageViews.header(page, "X-Served-By"));
                }
            } catch (IOException e) {
                failures.add(e.toString());
            }
            if (inBuildLine) {
                log().substring(logFrom).lines().map(l -> l.replaceAll("\u001B\\[[0-9;]*[A-Za-z]", ""))
                        .filter(l -> l.contains("dev-server: build") && l.contains(marker) == present)
                        .map(REPLICA::matcher).filter(Matcher::find).forEach(m -> replicas.add(m.group(1)));
            }
            return replicas.size() == REPLICAS;
        });
        double seconds = (System.nanoTime() - saved) / 1e9;
        SERVED_AFTER.computeIfAbsent(kind, k -> new ArrayList<>()).add(seconds);
        System.out.printf("dev loop: %s served by all %d replicas after %.1f s; %d answers, %d not 200%n",
                kind, REPLICAS, seconds, answers.get(), failures.size());
        assertEquals(List.of(), failures, "no request may fail while the replicas reload (" + kind + ")");
        // The goal is 3 s (#14); the bound leaves room for a loaded CI machine and still fails on
        // a return to restarting JVMs (18 s).
        assertTrue(seconds <= 10.0, "every replica serves " + kind + " within 10 s; took " + seconds + " s");
    }

    private interface Save {
        void run() throws IOException;
    }

    /** Files of the repository changed as one save: apply() writes them all, close() puts them back. */
    private static final class Change implements AutoCloseable {
        private final Map<Path, UnaryOperator<String>> edits = new LinkedHashMap<>();
        /** Each written file's content before, null for a file apply() created. */
        private final LinkedHashMap<Path, String> before = new LinkedHashMap<>();

        Change replace(Path relative, String from, String to) {
            return edit(relative, content -> {
                assertTrue(content.contains(from), relative + " no longer contains " + from);
                return content.replace(from, to);
            });
        }

        /** Appending to a file that does not exist creates it; undone, it is deleted. */
        Change append(Path relative, String text) {
            return edit(relative, content -> content + text);
        }

        private Change edit(Path relative, UnaryOperator<String> how) {
            edits.merge(Project.root().resolve(relative), how, (first, then) -> c -> then.apply(first.apply(c)));
            return this;
        }

        Change apply() throws IOException {
            for (var e : edits.entrySet()) {
                Path file = e.getKey();
                before.put(file, Files.exists(file) ? Files.readString(file) : null);
                Files.writeString(file, e.getValue().apply(Objects.requireNonNullElse(before.get(file), "")));
            }
            return this;
        }

        /** In reverse order (a new file deleted last); nothing if not applied, or put back already. */
        @Override
        public void close() throws IOException {
            for (Path file : before.sequencedKeySet().reversed()) {
                if (before.get(file) == null) {
                    Files.deleteIfExists(file);
                } else {
                    Files.writeString(file, before.get(file));
                }
            }
            before.clear();
        }
    }

    private static String body(String path) {
        try {
            return Http.get(stack.uri(path)).body();
        } catch (IOException e) {
            return "";
        }
    }

    private static String log() {
        try {
            return Files.readString(watchLog);
        } catch (IOException e) {
            return "";
        }
    }

    /** Polls every 100 ms; fails at once, with all its output, if compose watch exits; on a timeout, with its end. */
    private static void awaitTrue(Duration within, String what, Callable<Boolean> condition) {
        explained(() -> await(what, within).pollInterval(Duration.ofMillis(100))
                .failFast(what + ": compose watch exited", () -> !watch.isAlive())
                .until(condition), () -> {
                    String log = log();
                    return watch.isAlive() ? "compose watch's last output:\n" + log.substring(Math.max(0, log.length() - 4000))
                            : "exit status " + watch.exitValue() + ", its output:\n" + log;
                });
    }
}

package org.example.visitcounter.dev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dev server without Docker: web-app's real sources copied to a temporary directory, edited
 * there, reloaded in this JVM. Redis is not needed: /healthz answers without it.
 */
class DevServerReloadTest {
    private static final Path WEB_APP = Path.of("../web-app/src/main");
    private static final String APP = "java/org/example/visitcounter/VisitCounterApp.java";
    private static final String HEALTH = "ctx.result(\"ok\")";
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path tmp;
    private Path sources;
    private DevServer dev;

    @BeforeEach
    void start() throws Exception {
        sources = tmp.resolve("main");
        copy(WEB_APP, sources);
        var compiler = new Compiler(sources.resolve("java"), sources.resolve("resources"), tmp.resolve("shared"), "21");
        // Redis on a port nothing listens on: the app starts and reconnects in the background.
        dev = new DevServer(compiler, Map.of("REDIS_URL", "redis://127.0.0.1:1", "LOG_LEVEL", "error"), "127.0.0.1", 0).start();
        assertEquals("ok", get("/healthz"));
    }

    @AfterEach
    void stop() throws Exception {
        dev.close();
    }

    @Test
    void fiftyReloadsLeakNoThreadsClassesOrMemory() throws Exception {
        Figures first = null;
        for (int i = 1; i <= 50; i++) {
            edit(HEALTH, "ctx.result(\"ok " + i + "\")");
            assertTrue(dev.reloadIfChanged(), "reload " + i);
            assertEquals("ok " + i, get("/healthz"), "the new code serves after reload " + i);
            restore();
            if (i == 1 || i == 25 || i == 50) {
                Figures now = Figures.measure();
                System.out.printf("dev-server: after reload %d: %s%n", i, now);
                if (first == null) {
                    first = now;
                } else {
                    // Noise: a pool thread or two, classes of the JDK's and libraries' lazily loaded paths.
                    assertTrue(now.threads <= first.threads + 2, "threads grew: " + first + " -> " + now);
                    assertTrue(now.classes <= first.classes + 300, "loaded classes grew: " + first + " -> " + now);
                    assertTrue(now.metaspaceMiB <= first.metaspaceMiB + 4, "metaspace grew: " + first + " -> " + now);
                    assertTrue(now.rssMiB <= first.rssMiB + 20, "RSS grew more than 20 MiB: " + first + " -> " + now);
                }
            }
        }
    }

    @Test
    void aBuildIsReusedOnlyAgainstTheSameLibrariesAndRelease() throws Exception {
        // A replica of an image rebuilt for a pom edit shares the volume with the old builds.
        Path shared = tmp.resolve("shared");
        String same = new Compiler(sources.resolve("java"), sources.resolve("resources"), shared, "21").fingerprint();
        assertEquals(same, new Compiler(sources.resolve("java"), sources.resolve("resources"), shared, "21").fingerprint());
        assertFalse(same.equals(new Compiler(sources.resolve("java"), sources.resolve("resources"), shared, "25").fingerprint()),
                "another --release");
        String classPath = System.getProperty("java.class.path");
        try {
            Path added = tmp.resolve("added-1.0.jar");
            try (var jar = new java.util.zip.ZipOutputStream(Files.newOutputStream(added))) {
                jar.putNextEntry(new java.util.zip.ZipEntry("added/Added.class"));
            }
            System.setProperty("java.class.path", classPath + java.io.File.pathSeparator + added);
            assertFalse(same.equals(new Compiler(sources.resolve("java"), sources.resolve("resources"), shared, "21").fingerprint()),
                    "one library more");
        } finally {
            System.setProperty("java.class.path", classPath);
        }
    }

    @Test
    void aCompileErrorKeepsTheOldCodeServingAndSaysWhere() throws Exception {
        edit(HEALTH, "ctx.result(\"ok\") oops");
        assertTrue(dev.reloadIfChanged());
        assertEquals("ok", get("/healthz"), "the previous build still serves");
        assertTrue(dev.errors().startsWith("org/example/visitcounter/VisitCounterApp.java:"), dev.errors());
        assertTrue(get(DevServer.BANNER_PATH).contains("VisitCounterApp.java:"), "the banner stylesheet shows it");

        restore();
        assertTrue(dev.reloadIfChanged());
        assertEquals("", dev.errors());
        assertFalse(get(DevServer.BANNER_PATH).contains("VisitCounterApp"), "no banner after the fix");
    }

    @Test
    void aDeletedClassIsGoneAndANewOneServes() throws Exception {
        Path page = sources.resolve("java/org/example/visitcounter/Extra.java");
        Files.writeString(page, "package org.example.visitcounter;\nfinal class Extra { static String v() { return \"extra\"; } }\n");
        edit(HEALTH, "ctx.result(Extra.v())");
        assertTrue(dev.reloadIfChanged());
        assertEquals("extra", get("/healthz"));
        Files.delete(page);
        assertTrue(dev.reloadIfChanged());
        assertTrue(dev.errors().contains("VisitCounterApp.java:"), "a use of the deleted class fails: " + dev.errors());
        restore();
        assertTrue(dev.reloadIfChanged());
        assertEquals("ok", get("/healthz"));
    }

    private String original;

    private void edit(String from, String to) throws IOException {
        Path file = sources.resolve(APP);
        String content = Files.readString(file);
        if (original == null) {
            original = content;
        }
        assertTrue(content.contains(from), from);
        Files.writeString(file, content.replace(from, to));
    }

    private void restore() throws IOException {
        Files.writeString(sources.resolve(APP), original);
    }

    private String get(String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + dev.port() + path)).build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }

    private static void copy(Path from, Path to) throws IOException {
        try (Stream<Path> walk = Files.walk(from)) {
            for (Path p : walk.sorted(Comparator.naturalOrder()).toList()) {
                Files.copy(p, to.resolve(from.relativize(p).toString()));
            }
        }
    }

    /** This JVM's threads, loaded classes, metaspace and resident memory, after a full GC. */
    private record Figures(int threads, int classes, long metaspaceMiB, long codeMiB, long rssMiB) {
        static Figures measure() throws IOException {
            // Javalin checks, 5 s after an app is created, that it was started: that thread holds the
            // app (and so its class loader) until then. Measure once the last ones are done.
            Awaitility.await("Javalin's start checks done").atMost(Duration.ofSeconds(15)).until(() -> Thread.getAllStackTraces()
                    .values().stream().flatMap(Stream::of).noneMatch(f -> f.getClassName().equals("io.javalin.jetty.JettyServer")
                            && f.getMethodName().startsWith("_init_$lambda")));
            for (int i = 0; i < 3; i++) {
                System.gc(); // class unloading happens at a full collection
            }
            long metaspace = ManagementFactory.getMemoryPoolMXBeans().stream()
                    .filter(pool -> pool.getName().equals("Metaspace")).mapToLong(pool -> pool.getUsage().getUsed()).sum();
            long rssKiB = Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("VmRSS:"))
                    .mapToLong(l -> Long.parseLong(l.replaceAll("\\D", ""))).findFirst().orElse(0);
            int threads = ManagementFactory.getThreadMXBean().getThreadCount();
            // The JIT's code: "CodeHeap ..." pools, or one "CodeCache" when C1 only.
            long code = ManagementFactory.getMemoryPoolMXBeans().stream().filter(pool -> pool.getName().startsWith("Code"))
                    .mapToLong(pool -> pool.getUsage().getCommitted()).sum();
            return new Figures(threads,
                    ManagementFactory.getClassLoadingMXBean().getLoadedClassCount(), metaspace >> 20, code >> 20, rssKiB >> 10);
        }

        @Override
        public String toString() {
            return threads + " threads, " + classes + " classes, metaspace " + metaspaceMiB + " MiB, JIT code " + codeMiB
                    + " MiB, RSS " + rssMiB + " MiB";
        }
    }
}

package org.example.visitcounter.dev;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.zip.ZipFile;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.StandardLocation;
import javax.tools.ToolProvider;

/**
 * Compiles the synced sources with the JDK's compiler inside this JVM (no javac process: it stays
 * warm), into {@code classes-<fingerprint>} under a directory the replicas share: the first replica
 * to take the lock compiles, the others find its output (or its errors) there.
 */
final class Compiler {
    private static final String WIRING = "wiring/org/example/visitcounter/DevApp.java";
    private static final String PROJECT_CLASS = "org/example/visitcounter/VisitCounterApp.class";
    private static final int KEEP = 5;

    record Result(String fingerprint, Path classes, Path resources, String errors, long millis) {
        boolean ok() {
            return errors == null;
        }
    }

    private final Path java;
    private final Path resources;
    private final Path shared;
    private final String release;
    private final String wiring;
    /** What else the output depends on: the libraries (names and sizes) and --release. */
    private final String against;
    private final JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    private final StandardJavaFileManager files = javac.getStandardFileManager(null, Locale.ROOT, StandardCharsets.UTF_8);

    Compiler(Path java, Path resources, Path shared, String release) throws IOException {
        this.java = java;
        this.resources = resources;
        this.shared = shared;
        this.release = release;
        try (InputStream in = Compiler.class.getClassLoader().getResourceAsStream(WIRING)) {
            if (in == null) {
                throw new IOException(WIRING + " is missing from the dev server's class path");
            }
            this.wiring = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        Files.createDirectories(shared);
        // The libraries only: the project's classes come from the sources, never from a (stale) jar.
        List<File> libraries = Stream.of(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(entry -> !entry.isBlank() && !holdsProjectClasses(Path.of(entry)))
                .map(File::new).toList();
        files.setLocation(StandardLocation.CLASS_PATH, libraries);
        // A replica of a rebuilt image (a pom edit) must not load classes compiled against other jars.
        this.against = "--release " + release + " " + libraries.stream()
                .map(f -> f.getName() + ":" + f.length()).collect(Collectors.joining(" "));
    }

    /** The sources' content (compose sync keeps the host's mtimes, so not by time) and what they compile against. */
    String fingerprint() throws IOException {
        MessageDigest digest = sha256();
        for (Path root : List.of(java, resources)) {
            for (Path file : tree(root)) {
                digest.update(root.relativize(file).toString().getBytes(StandardCharsets.UTF_8));
                digest.update((byte) 0);
                try {
                    digest.update(Files.readAllBytes(file));
                } catch (java.nio.file.NoSuchFileException deletedMeanwhile) {
                    digest.update((byte) 1);
                }
            }
        }
        digest.update(wiring.getBytes(StandardCharsets.UTF_8));
        digest.update(against.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(digest.digest(), 0, 12);
    }

    /** Builds the sources whose {@link #fingerprint()} is given, unless a replica has built them already. */
    synchronized Result compile(String fingerprint) throws IOException {
        long started = System.nanoTime();
        Path out = shared.resolve("classes-" + fingerprint);
        Path failed = shared.resolve("classes-" + fingerprint + ".failed");
        try (var lock = FileChannel.open(shared.resolve("compile.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                var held = lock.lock()) {
            if (!Files.isDirectory(out) && !Files.exists(failed)) {
                String errors = javac(out);
                if (errors != null) {
                    Files.writeString(failed, errors);
                }
                prune();
            }
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        return Files.exists(failed) ? new Result(fingerprint, null, resources, Files.readString(failed), millis)
                : new Result(fingerprint, out, resources, null, millis);
    }

    /** Null on success, else one {@code file:line: message} per error. */
    private String javac(Path out) throws IOException {
        Path tmp = Files.createTempDirectory(shared, "compiling-");
        files.setLocationFromPaths(StandardLocation.CLASS_OUTPUT, List.of(tmp));
        List<JavaFileObject> units = new ArrayList<>();
        files.getJavaFileObjectsFromPaths(tree(java).stream().filter(f -> f.toString().endsWith(".java")).toList())
                .forEach(units::add);
        units.add(new SimpleJavaFileObject(URI.create("string:///" + WIRING), JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                return wiring;
            }
        });
        var diagnostics = new DiagnosticCollector<JavaFileObject>();
        boolean ok = javac.getTask(null, files, diagnostics,
                List.of("--release", release, "-g", "-proc:none", "-encoding", "UTF-8", "-Xlint:none", "-nowarn"), null, units).call();
        if (ok) {
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
            return null;
        }
        delete(tmp);
        return diagnostics.getDiagnostics().stream().filter(d -> d.getKind() == Diagnostic.Kind.ERROR)
                .map(d -> where(d) + ": " + d.getMessage(Locale.ROOT))
                .collect(Collectors.joining("\n"));
    }

    private String where(Diagnostic<? extends JavaFileObject> d) {
        if (d.getSource() == null) {
            return "javac";
        }
        String name = d.getSource().toUri().getScheme().equals("file")
                ? java.relativize(Path.of(d.getSource().toUri())).toString() : d.getSource().getName();
        return name + ":" + d.getLineNumber();
    }

    /** Keeps the newest builds only: a replica may still be loading an older one. */
    private void prune() throws IOException {
        List<Path> builds;
        try (Stream<Path> list = Files.list(shared)) {
            builds = list.filter(p -> p.getFileName().toString().startsWith("classes-"))
                    .sorted(Comparator.comparing(Compiler::modified).reversed()).toList();
        }
        for (Path old : builds.subList(Math.min(KEEP * 2, builds.size()), builds.size())) {
            delete(old);
        }
    }

    private static long modified(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            return 0;
        }
    }

    private static List<Path> tree(Path root) throws IOException {
        if (!Files.isDirectory(root)) {
            return List.of();
        }
        try (Stream<Path> walk = Files.walk(root)) {
            return walk.filter(Files::isRegularFile).sorted().toList();
        } catch (UncheckedIOException e) { // a file deleted during the walk: the next poll sees the result
            return List.of();
        }
    }

    private static void delete(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static boolean holdsProjectClasses(Path entry) {
        if (Files.isDirectory(entry)) {
            return Files.exists(entry.resolve(PROJECT_CLASS));
        }
        try (var zip = new ZipFile(entry.toFile())) {
            return zip.getEntry(PROJECT_CLASS) != null;
        } catch (IOException e) {
            return false;
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}

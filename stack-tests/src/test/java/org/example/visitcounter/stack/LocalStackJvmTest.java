package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The JVM a loopback replica runs: the image's flags file (web-app/jvm.options), plus glibc's
 * heap tuning where the C library is glibc, which the image (musl) does without.
 */
@Tag("loopback")
class LocalStackJvmTest {
    @Test
    void aReplicaRunsTheImagesFlagsPlusGlibcsHeapTuning() throws Exception {
        boolean glibc = new ProcessBuilder("getconf", "GNU_LIBC_VERSION").start().waitFor() == 0;
        try (var stack = LocalStack.start(Map.of("REPLICAS", "1"))) {
            long pid = stack.pid("web-1");
            List<String> args = nulSeparated(Path.of("/proc", Long.toString(pid), "cmdline"));
            List<String> env = nulSeparated(Path.of("/proc", Long.toString(pid), "environ"));
            Path options = Project.root().resolve("web-app/jvm.options").toRealPath();
            assertTrue(args.contains("@" + options), "the image's flags file: " + args);
            assertEquals(glibc, args.contains("-XX:TrimNativeHeapInterval=5000"), "trimming on glibc only: " + args);
            assertEquals(glibc, env.contains("MALLOC_ARENA_MAX=2"), "two malloc arenas on glibc only");
            stack.stop();
        }
        // The image runs on musl, where the JVM warns about the trim flag at every start.
        assertFalse(Files.readString(Project.root().resolve("web-app/jvm.options"))
                .contains("TrimNativeHeapInterval"), "web-app/jvm.options holds only flags that apply on musl too");
    }

    private static List<String> nulSeparated(Path file) throws Exception {
        return Arrays.asList(new String(Files.readAllBytes(file), StandardCharsets.UTF_8).split("\0"));
    }
}

package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ConnectException;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The shared promises on the loopback stack, and what only loopback shows: the replicas' own ports
 * and the JVM flags local-stack.sh gives them.
 */
@Tag("loopback")
class LoopbackStackTest extends StackPromisesTest {
    @Override
    Stack startStack() {
        return LocalStack.withOwnRedis();
    }

    @Override
    String diagnosis() {
        return stack == null ? "" : local().output();
    }

    private LocalStack local() {
        return (LocalStack) stack;
    }

    @Test
    @Order(1)
    void theReplicasOwnPortsAnswerTheOperationalEndpointsOnTheLoopbackAddressOnly() {
        for (String replica : stack.replicas()) {
            URI own = local().replicaUri(replica);
            for (String path : List.of("/metrics", "/healthz", "/readyz")) {
                assertEquals(200, Http.status(own.resolve(path)), replica + path);
            }
            // local-stack.sh sets HOST=127.0.0.1. 127.0.0.2 is this machine too (all of 127/8 is
            // loopback), so it reaches a replica bound to every interface but not one bound to 127.0.0.1.
            assertThrows(ConnectException.class, () -> new Socket("127.0.0.2", own.getPort()).close(),
                    replica + " accepts connections on 127.0.0.2:" + own.getPort());
        }
    }

    /** The image's flags file (web-app/jvm.options), plus glibc's heap tuning where the C library is glibc. */
    @Test
    @Order(1)
    void aReplicaRunsTheImagesFlagsPlusGlibcsHeapTuning() throws Exception {
        boolean glibc = Processes.run(List.of("getconf", "GNU_LIBC_VERSION")).status() == 0;
        Path proc = Path.of("/proc", Long.toString(local().pid("web-1")));
        List<String> args = List.of(Files.readString(proc.resolve("cmdline")).split("\0"));
        List<String> env = List.of(Files.readString(proc.resolve("environ")).split("\0"));
        Path options = Project.root().resolve("web-app/jvm.options").toRealPath();
        assertTrue(args.contains("@" + options), "the image's flags file: " + args);
        assertEquals(glibc, args.contains("-XX:TrimNativeHeapInterval=5000"), "trimming on glibc only: " + args);
        assertEquals(glibc, env.contains("MALLOC_ARENA_MAX=2"), "two malloc arenas on glibc only");
        // The image runs on musl, where the JVM warns about the trim flag at every start.
        assertFalse(Files.readString(options).contains("TrimNativeHeapInterval"),
                "web-app/jvm.options holds only flags that apply on musl too");
    }
}

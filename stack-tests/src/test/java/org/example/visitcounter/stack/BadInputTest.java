package org.example.visitcounter.stack;

import static java.nio.charset.StandardCharsets.ISO_8859_1;
import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.example.visitcounter.stack.support.Http;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer.OrderAnnotation;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bad input (issue 5) on the loopback stack, through nginx and directly to a replica: the corpus
 * {@code bad-requests.txt} as raw bytes (its header says what each entry must get), a bounded slowloris,
 * and more connections than nginx's worker_connections. Nothing is counted; the stack serves on.
 */
@Tag("loopback")
@TestMethodOrder(OrderAnnotation.class)
class BadInputTest {
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(5);
    private static final Pattern STATUS_LINE = Pattern.compile("^HTTP/1\\.[01] (\\d{3})");
    private static final Pattern CONTENT_LENGTH = Pattern.compile("(?im)^content-length:\\s*(\\d+)");
    /** What an error page must not reveal: the stack's software, versions, traces, internal addresses. */
    private static final Pattern LEAK = Pattern.compile("(?i)jetty|javalin|eclipse|java|kotlin|jedis|redis|nginx/\\d"
            + "|exception|\\tat |\\bat [a-z]+\\.[a-z]+\\.|127\\.0\\.0\\.1|localhost");

    private static final List<String> TARGETS = List.of("nginx", "web-1");

    @AutoClose
    private static LocalStack stack;
    private static long totalAtStart;
    /** Visits the corpus may count: 2xx to the entries nginx sanitizes by design (see the corpus). */
    private static long tolerated;
    private static int triedInputs;

    @BeforeAll
    static void startStack() {
        stack = LocalStack.withOwnRedis();
        totalAtStart = stack.redisTotal();
    }

    static Stream<Arguments> corpus() throws IOException {
        List<BadRequest> corpus = BadRequest.load();
        assertTrue(corpus.size() >= 50, "corpus entries: " + corpus.size());
        return TARGETS.stream().flatMap(target -> corpus.stream().map(bad -> Arguments.of(target, bad.name(), bad)));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("corpus")
    @Order(1)
    void aCorpusRequestGetsA4xxOrAClosedConnectionWithoutALeakOrACount(String target, String name, BadRequest bad)
            throws IOException {
        triedInputs++;
        Reply reply = send(port(target), bad.bytes());
        Matcher leak = LEAK.matcher(reply.text());
        assertFalse(leak.find(), () -> "leaks \"" + leak.group() + "\": " + reply.excerpt());
        if (reply.text().isEmpty()) {
            assertFalse(reply.timedOut(), "no answer within " + READ_TIMEOUT.toSeconds() + " s and still open");
            return; // closed: refused
        }
        int status = reply.status();
        if (status / 100 == 2 && bad.nginxSanitizes() && target.equals("nginx")) {
            tolerated += reply.counted() ? 1 : 0; // by design (see the corpus flag), accounted for in the total
            return;
        }
        assertTrue(status / 100 == 4 || status == 501 || status == 505,
                () -> "status " + status + " (-1: not HTTP/1.x, an HTTP/0.9 body?): " + reply.excerpt());
        assertFalse(reply.counted(), "a " + status + " that counted a visit");
    }

    @Test
    @Order(2)
    void theCorpusCountedOnlyTheFlaggedEntriesNginxPassedOn() {
        System.out.printf("corpus: %d requests; %d flagged ones answered 2xx and counted%n", triedInputs, tolerated);
        assertTrue(triedInputs >= 100, "the corpus ran first: " + triedInputs + " requests");
        assertEquals(totalAtStart + tolerated, stack.redisTotal(), "Redis total after the corpus");
        assertServesOnEveryReplica();
    }

    @Test
    @Order(3)
    void aSlowlorisIsCutOffByNginxAndDoesNotStarveTheStack() throws Exception {
        long totalBefore = stack.redisTotal();
        var slow = new ArrayList<Future<String>>();
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) { // close() waits for every one to end
            for (String target : TARGETS) {
                for (int i = 0; i < 4; i++) {
                    slow.add(pool.submit(() -> target + " " + slowloris(port(target), Duration.ofSeconds(15))));
                }
            }
            // While the slow connections hang on: the stack still answers (a read, counting nothing).
            assertEquals(200, Http.get(stack.uri("/api/visits")).statusCode());
            assertEquals(200, Http.get(stack.replicaUri("web-1").resolve("/api/visits")).statusCode());
        }
        List<String> outcomes = slow.stream().map(Future::resultNow).toList();
        System.out.println("slowloris: " + outcomes);
        // nginx's client_header_timeout is 10 s for the whole header, however slowly it trickles in.
        for (String outcome : outcomes.subList(0, 4)) { // TARGETS: nginx first
            assertTrue(outcome.matches("nginx closed after (9|10|11|12)\\d{3} ms.*"), "nginx kept a slowloris: " + outcome);
            assertFalse(outcome.matches(".* with HTTP/\\S+ 5.*|.* LEAK$"), outcome);
        }
        assertEquals(totalBefore, stack.redisTotal(), "Redis total after the slowloris");
        assertServesOnEveryReplica();
    }

    @Test
    @Order(4)
    void moreConnectionsThanNginxAcceptsAreRefusedOrHeldAndTheStackRecovers() throws Exception {
        long totalBefore = stack.redisTotal();
        int nginx = port("nginx");
        // nginx: 2 workers x 1024 worker_connections; past that it stops accepting or resets.
        int flood = 2200;
        var sockets = new ArrayList<Socket>();
        int refused = 0;
        try {
            for (int i = 0; i < flood; i++) {
                try {
                    sockets.add(connect(nginx));
                } catch (IOException e) {
                    refused++;
                }
            }
            // With the flood open, a new client gets an answer that is neither a 5xx nor a leak, or none.
            Reply reply = send(nginx, "GET /api/visits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .getBytes(ISO_8859_1));
            System.out.printf("connection flood: %d opened, %d refused; a new request meanwhile: %d (-1: none)%n",
                    flood - refused, refused, reply.status());
            assertTrue(reply.status() < 500 && !LEAK.matcher(reply.text()).find(), reply.excerpt());
        } finally {
            for (Socket s : sockets) {
                s.close();
            }
        }
        String nginxErrors = Files.readString(stack.logs().resolve("nginx-error.log"));
        assertTrue(nginxErrors.contains("worker_connections are not enough"), "the flood did not reach nginx's limit");
        assertEquals(totalBefore, stack.redisTotal(), "Redis total after the connection flood");
        assertServesOnEveryReplica();
    }

    private static int port(String target) {
        return (target.equals("nginx") ? stack.uri("/") : stack.replicaUri(target)).getPort();
    }

    /** What came back on one connection (bytes as ISO-8859-1), and whether the server still held it open at the end. */
    private record Reply(String text, boolean timedOut) {
        int status() {
            Matcher m = STATUS_LINE.matcher(text);
            return m.find() ? Integer.parseInt(m.group(1)) : -1;
        }

        /** An X-Visit-Count header before the end of the headers. */
        boolean counted() {
            return text.split("\r\n\r\n", 2)[0].toLowerCase().contains("\r\nx-visit-count:");
        }

        String excerpt() {
            String t = text.replace("\r", "\\r").replace("\n", "\\n");
            return t.length() > 400 ? t.substring(0, 400) + "..." : t;
        }
    }

    private static Socket connect(int port) throws IOException {
        var socket = new Socket(); // closed by connect where it fails
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
        return socket;
    }

    /**
     * Writes {@code request} on a new connection and reads the answer: one response (by its
     * Content-Length or chunked end), or up to the server closing, or {@link #READ_TIMEOUT}.
     */
    private static Reply send(int port, byte[] request) throws IOException {
        try (var socket = connect(port)) {
            socket.setSoTimeout((int) READ_TIMEOUT.toMillis());
            try {
                socket.getOutputStream().write(request);
            } catch (IOException e) {
                // The server may answer and close before reading all of an oversized request.
            }
            var got = new StringBuilder();
            byte[] buffer = new byte[8192];
            try {
                for (int n; !complete(got.toString()) && (n = socket.getInputStream().read(buffer)) >= 0; ) {
                    got.append(new String(buffer, 0, n, ISO_8859_1));
                }
            } catch (SocketTimeoutException e) {
                return new Reply(got.toString(), !complete(got.toString()));
            } catch (IOException e) {
                // reset: the server closed without reading everything
            }
            return new Reply(got.toString(), false);
        }
    }

    /** Whether {@code text} holds one whole HTTP/1.x response; without a length, it ends when the server closes. */
    private static boolean complete(String text) {
        int end = text.indexOf("\r\n\r\n");
        if (!text.startsWith("HTTP/") || end < 0) {
            return false;
        }
        String head = text.substring(0, end);
        Matcher length = CONTENT_LENGTH.matcher(head);
        if (length.find()) {
            return text.length() >= end + 4 + Long.parseLong(length.group(1));
        }
        return head.toLowerCase().contains("transfer-encoding: chunked") && text.endsWith("\r\n0\r\n\r\n");
    }

    /**
     * One slowloris connection: a request line, then one header byte per second, never ending
     * the header, for at most {@code bound}. Returns how it ended ("closed after N ms", with the
     * status line of any answer and LEAK if it leaks, or "held for the whole bound").
     */
    private static String slowloris(int port, Duration bound) {
        long start = System.nanoTime();
        try (var socket = connect(port)) {
            socket.setSoTimeout(1000); // the pace: one byte a second, unless the server answers or closes
            socket.getOutputStream().write("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(ISO_8859_1));
            byte[] answer = new byte[4096];
            while (System.nanoTime() - start < bound.toNanos()) {
                socket.getOutputStream().write('a'); // throws once the server has closed
                try {
                    int n = socket.getInputStream().read(answer);
                    String text = n < 0 ? "" : new String(answer, 0, n, ISO_8859_1);
                    return "closed after " + (System.nanoTime() - start) / 1_000_000 + " ms" + (n < 0 ? "" : " with "
                            + text.lines().findFirst().orElse("") + (LEAK.matcher(text).find() ? " LEAK" : ""));
                } catch (SocketTimeoutException stillOpen) {
                    // nothing yet: send the next byte
                }
            }
            return "held for the whole " + bound.toSeconds() + " s";
        } catch (IOException e) {
            return "closed after " + (System.nanoTime() - start) / 1_000_000 + " ms (" + e.getMessage() + ")";
        }
    }

    /** One corpus entry: its name, its flag (see the corpus), and the exact bytes to send. */
    private record BadRequest(String name, boolean nginxSanitizes, byte[] bytes) {
        private static final String FLAG = " [nginx-sanitizes]";
        private static final Pattern REPEAT = Pattern.compile("\\$\\{(\\d+)\\*(.*?)}");
        private static final Pattern HEX = Pattern.compile("\\\\x(\\p{XDigit}{2})");

        /** The entries of the corpus, in the format described at its top. */
        static List<BadRequest> load() throws IOException {
            String text = Files.readString(Project.root().resolve("stack-tests/src/test/resources/bad-requests.txt"));
            return Stream.of(text.split("(?m)^=== ")).skip(1).map(entry -> {
                List<String> lines = entry.lines().toList();
                String request = lines.stream().skip(1).filter(l -> !l.startsWith("#") && !l.isBlank())
                        .collect(Collectors.joining()); // line breaks in the file are not part of the request
                String head = lines.getFirst();
                return new BadRequest(head.replace(FLAG, ""), head.endsWith(FLAG), decode(request));
            }).toList();
        }

        /** ${N*text} repeats, then \xHH (as an octal escape) and Java's escapes (\r \n \t \0 \\), one byte a char. */
        static byte[] decode(String spec) {
            String repeated = REPEAT.matcher(spec)
                    .replaceAll(m -> Matcher.quoteReplacement(m.group(2).repeat(Integer.parseInt(m.group(1)))));
            return HEX.matcher(repeated).replaceAll(m -> Matcher.quoteReplacement(
                    "\\%03o".formatted(Integer.parseInt(m.group(1), 16)))).translateEscapes().getBytes(ISO_8859_1);
        }
    }

    /** GET / through nginx 200 from every replica (nginx may skip a peer it marked failed for a few seconds). */
    private static void assertServesOnEveryReplica() {
        Set<String> served = new HashSet<>();
        await("GET / through nginx served by every replica", Duration.ofSeconds(20))
                .ignoreExceptionsInstanceOf(IOException.class).until(() -> {
                    var r = Http.get(stack.uri("/"));
                    if (r.statusCode() == 200) {
                        r.headers().firstValue("X-Served-By").ifPresent(served::add);
                    }
                    return served.containsAll(stack.replicas());
                });
    }
}

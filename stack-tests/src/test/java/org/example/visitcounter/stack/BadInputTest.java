package org.example.visitcounter.stack;

import static org.example.visitcounter.stack.support.Waits.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.example.visitcounter.stack.support.Http;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer.OrderAnnotation;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Bad input (issue 5) on the loopback stack, through nginx and directly to a replica: the corpus
 * {@code bad-requests.txt} as raw bytes, a bounded slowloris, and more connections than nginx's
 * worker_connections. Each request gets a 4xx (501/505 where RFC 9110 prescribes them) or a closed
 * connection, never another 5xx, a stack trace, a version or an internal address; nothing is
 * counted; and the stack serves normally afterwards.
 */
@Tag("loopback")
@TestMethodOrder(OrderAnnotation.class)
class BadInputTest {
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(5);
    private static final Pattern STATUS_LINE = Pattern.compile("^HTTP/1\\.[01] (\\d{3})");
    private static final Pattern VISIT_COUNT = Pattern.compile("(?im)^X-Visit-Count:\\s*(\\d+)");
    /** What an error page must not reveal: the stack's software, versions, traces, internal addresses. */
    private static final Pattern LEAK = Pattern.compile(
            "(?i)jetty|javalin|eclipse|java|kotlin|jedis|redis|nginx/\\d|exception|\\tat |\\bat [a-z]+\\.[a-z]+\\.|127\\.0\\.0\\.1|localhost");

    private static LocalStack stack;
    /** nginx, and a replica directly. */
    private static List<Target> targets;
    private static int triedInputs;

    @BeforeAll
    static void startStack() {
        stack = LocalStack.withOwnRedis();
        targets = List.of(new Target("nginx", stack.httpPort()), new Target("web-1", stack.replicaUri("web-1").getPort()));
    }

    @AfterAll
    static void stopStack() {
        System.out.printf("bad input: %d inputs tried (corpus through nginx and direct, slowloris, connection flood)%n",
                triedInputs);
        if (stack != null) {
            stack.stop();
        }
    }

    @Test
    @Order(1)
    void everyCorpusRequestIsRefusedWithoutA5xxALeakOrACount() {
        List<BadRequest> corpus = BadRequest.load("/bad-requests.txt");
        assertTrue(corpus.size() >= 50, "corpus entries: " + corpus.size());
        var problems = new ArrayList<String>();
        long totalBefore = stack.redisTotal();
        long tolerated = 0;
        for (Target target : targets) {
            for (BadRequest bad : corpus) {
                triedInputs++;
                Reply reply = send(target.port(), bad.bytes());
                String verdict = judge(bad, target, reply);
                System.out.printf("  %-6s %-45s -> %s%n", target.name(), bad.name(), reply.summary());
                if (verdict != null) {
                    problems.add(target.name() + " / " + bad.name() + ": " + verdict + "\n    " + reply.excerpt());
                } else if (reply.status() / 100 == 2) {
                    tolerated += reply.visitCounted() ? 1 : 0;
                }
            }
        }
        assertEquals(List.of(), problems, "bad requests answered wrongly");
        // Only the flagged entries that got a 2xx (see the corpus) may have counted, one each.
        System.out.printf("corpus: %d entries, %d requests; %d flagged ones answered 2xx and counted%n",
                corpus.size(), triedInputs, tolerated);
        assertEquals(totalBefore + tolerated, stack.redisTotal(), "Redis total after the corpus");
        assertServesOnEveryReplica();
    }

    @Test
    @Order(2)
    void aSlowlorisIsCutOffByNginxAndDoesNotStarveTheStack() throws Exception {
        long totalBefore = stack.redisTotal();
        var closedAfter = new ConcurrentLinkedQueue<String>();
        var threads = new ArrayList<Thread>();
        int perTarget = 4;
        Duration bound = Duration.ofSeconds(15);
        for (var target : targets) {
            for (int i = 0; i < perTarget; i++) {
                triedInputs++;
                threads.add(Thread.ofPlatform().daemon().name("slowloris-" + target.name() + "-" + i)
                        .start(() -> closedAfter.add(target.name() + " " + slowloris(target.port(), bound))));
            }
        }
        try {
            // While the slow connections hang on: the stack still answers (a read, counting nothing).
            assertEquals(200, Http.get(stack.uri("/api/visits")).statusCode());
            assertEquals(200, Http.get(stack.replicaUri("web-1").resolve("/api/visits")).statusCode());
        } finally {
            for (Thread t : threads) {
                t.join(bound.plusSeconds(10));
            }
        }
        System.out.println("slowloris: " + closedAfter);
        // nginx's client_header_timeout is 10 s for the whole header, however slowly it trickles in.
        var nginxOutcomes = closedAfter.stream().filter(s -> s.startsWith("nginx ")).toList();
        assertEquals(perTarget, nginxOutcomes.size());
        for (String outcome : nginxOutcomes) {
            assertTrue(outcome.matches("nginx closed after (9|10|11|12)\\d{3} ms.*"), "nginx kept a slowloris: " + outcome);
            assertTrue(!outcome.contains("5xx") && !LEAK.matcher(outcome).find(), outcome);
        }
        assertEquals(totalBefore, stack.redisTotal(), "Redis total after the slowloris");
        assertServesOnEveryReplica();
    }

    @Test
    @Order(3)
    void moreConnectionsThanNginxAcceptsAreRefusedOrHeldAndTheStackRecovers() throws Exception {
        long totalBefore = stack.redisTotal();
        // nginx: 2 workers x 1024 worker_connections; past that it stops accepting or resets.
        int flood = 2200;
        var sockets = new ArrayList<Socket>();
        int refused = 0;
        try {
            for (int i = 0; i < flood; i++) {
                triedInputs++;
                try {
                    var socket = new Socket();
                    sockets.add(socket);
                    socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), stack.httpPort()), 2000);
                } catch (IOException e) {
                    refused++;
                }
            }
            // With the flood open, a new client gets an answer that is neither a 5xx nor a leak, or none.
            Reply reply = send(stack.httpPort(), "GET /api/visits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            System.out.printf("connection flood: %d opened, %d refused; a new request meanwhile: %s%n",
                    flood - refused, refused, reply.summary());
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

    // ---- judging ------------------------------------------------------------------------------

    /** Null when the reply is acceptable for this entry and target, else what is wrong. */
    private static String judge(BadRequest bad, Target target, Reply reply) {
        Matcher leak = LEAK.matcher(reply.text());
        if (leak.find()) {
            return "leaks \"" + leak.group() + "\"";
        }
        if (reply.bytes().length == 0) {
            return reply.timedOut() ? "no answer within " + READ_TIMEOUT.toSeconds() + " s and still open" : null; // closed
        }
        int status = reply.status();
        if (status < 0) {
            return "not an HTTP/1.x response (an HTTP/0.9 body?)";
        }
        if (status / 100 == 4 || status == 501 || status == 505) {
            return reply.visitCounted() ? "a " + status + " that counted a visit" : null;
        }
        if (status / 100 == 2 && bad.mayPass(target)) {
            return null; // by design (see the corpus flag); counted and accounted for
        }
        return "status " + status;
    }

    // ---- raw HTTP -----------------------------------------------------------------------------

    private record Target(String name, int port) {}

    /** What came back on one connection: the bytes, and whether the server still held it open at the end. */
    private record Reply(byte[] bytes, boolean timedOut) {
        String text() {
            return new String(bytes, StandardCharsets.ISO_8859_1);
        }

        int status() {
            Matcher m = STATUS_LINE.matcher(text());
            return m.find() ? Integer.parseInt(m.group(1)) : -1;
        }

        /** An X-Visit-Count header before the end of the headers. */
        boolean visitCounted() {
            return VISIT_COUNT.matcher(text().split("\r\n\r\n", 2)[0]).find();
        }

        String summary() {
            if (bytes.length == 0) {
                return timedOut ? "no answer, held open" : "closed, no answer";
            }
            int status = status();
            return (status < 0 ? "non-HTTP answer" : Integer.toString(status)) + (visitCounted() ? " (counted)" : "");
        }

        String excerpt() {
            String t = text().replace("\r", "\\r").replace("\n", "\\n");
            return t.substring(0, Math.min(400, t.length())) + (t.length() > 400 ? "..." : "");
        }
    }

    /**
     * Writes {@code request} on a new connection and reads the answer: one response (by its
     * Content-Length or chunked end), or up to the server closing, or {@link #READ_TIMEOUT}.
     */
    private static Reply send(int port, byte[] request) {
        try (var socket = new Socket()) {
            socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
            socket.setSoTimeout((int) READ_TIMEOUT.toMillis());
            try {
                socket.getOutputStream().write(request);
                socket.getOutputStream().flush();
            } catch (IOException e) {
                // The server may answer and close before reading all of an oversized request.
            }
            var got = new ByteArrayOutputStream();
            InputStream in = socket.getInputStream();
            byte[] buffer = new byte[8192];
            try {
                int n;
                while (!complete(got.toByteArray()) && (n = in.read(buffer)) >= 0) {
                    got.write(buffer, 0, n);
                }
                return new Reply(got.toByteArray(), false);
            } catch (SocketTimeoutException e) {
                return new Reply(got.toByteArray(), !complete(got.toByteArray()));
            } catch (IOException e) { // reset: the server closed without reading everything
                return new Reply(got.toByteArray(), false);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not connect to port " + port, e);
        }
    }

    /** Whether {@code data} holds one whole HTTP/1.x response. */
    private static boolean complete(byte[] data) {
        String text = new String(data, StandardCharsets.ISO_8859_1);
        int end = text.indexOf("\r\n\r\n");
        if (!text.startsWith("HTTP/") || end < 0) {
            return false;
        }
        String head = text.substring(0, end).toLowerCase(Locale.ROOT);
        Matcher length = Pattern.compile("(?m)^content-length:\\s*(\\d+)").matcher(head);
        if (length.find()) {
            return data.length >= end + 4 + Long.parseLong(length.group(1));
        }
        if (head.contains("transfer-encoding: chunked")) {
            return text.endsWith("\r\n0\r\n\r\n");
        }
        return false; // no length: the body ends when the server closes
    }

    /**
     * One slowloris connection: a request line, then one header byte per second, never ending
     * the header, for at most {@code bound}. Returns how it ended ("closed after N ms", with any
     * status the server sent, or "held for the whole bound").
     */
    private static String slowloris(int port, Duration bound) {
        long start = System.nanoTime();
        try (var socket = new Socket()) {
            socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
            socket.setSoTimeout(1000); // the pace: one byte a second, unless the server answers or closes
            var out = socket.getOutputStream();
            InputStream in = socket.getInputStream();
            out.write("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
            while (System.nanoTime() - start < bound.toNanos()) {
                try {
                    out.write('a');
                    out.flush();
                } catch (IOException e) {
                    return "closed after " + elapsedMillis(start) + " ms (write failed)";
                }
                try {
                    int b = in.read();
                    if (b < 0) {
                        return "closed after " + elapsedMillis(start) + " ms";
                    }
                    byte[] rest = new byte[4096];
                    int n = Math.max(0, in.read(rest));
                    String text = (char) b + new String(rest, 0, n, StandardCharsets.ISO_8859_1);
                    String status = text.startsWith("HTTP/") && text.length() >= 12 ? text.substring(9, 12) : "?";
                    return "closed after " + elapsedMillis(start) + " ms with " + (status.startsWith("5") ? "5xx " : "")
                            + status + (LEAK.matcher(text).find() ? " LEAK" : "");
                } catch (SocketTimeoutException stillOpen) {
                    // nothing yet: send the next byte
                }
            }
            return "held for the whole " + bound.toSeconds() + " s";
        } catch (IOException e) {
            return "closed after " + elapsedMillis(start) + " ms (" + e.getMessage() + ")";
        }
    }

    private static long elapsedMillis(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000;
    }

    // ---- the corpus ---------------------------------------------------------------------------

    /** One corpus entry: its name, its flags, and the exact bytes to send. */
    private record BadRequest(String name, Set<String> flags, byte[] bytes) {
        private static final Pattern ENTRY = Pattern.compile("^=== (.+?)(?: \\[([a-z, -]+)\\])?$");
        private static final Pattern REPEAT = Pattern.compile("\\$\\{(\\d+)\\*(.*?)}");

        /** Whether a 2xx is allowed from this target (see the flag in the corpus): only from nginx. */
        boolean mayPass(Target target) {
            return target.name().equals("nginx") && flags.contains("nginx-sanitizes");
        }

        /** Parses the corpus format described at the top of the resource. */
        static List<BadRequest> load(String resource) {
            String text;
            try (InputStream in = Objects.requireNonNull(BadInputTest.class.getResourceAsStream(resource), resource)) {
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            var entries = new ArrayList<BadRequest>();
            String name = null;
            Set<String> flags = Set.of();
            var body = new StringBuilder();
            for (String line : (text + "\n=== end").split("\\R")) {
                Matcher entry = ENTRY.matcher(line);
                if (entry.matches()) {
                    if (name != null) {
                        entries.add(new BadRequest(name, flags, decode(body.toString())));
                    }
                    name = entry.group(1);
                    flags = entry.group(2) == null ? Set.of() : Set.of(entry.group(2).split("[, ]+"));
                    body.setLength(0);
                } else if (name != null && !line.startsWith("#") && !line.isBlank()) {
                    body.append(line); // line breaks in the file are not part of the request
                }
            }
            return entries;
        }

        /** ${N*text} repeats, then the escapes \\r \\n \\t \\0 \\\\ \\xHH; everything else as UTF-8. */
        static byte[] decode(String spec) {
            Matcher repeat = REPEAT.matcher(spec);
            var expanded = new StringBuilder();
            while (repeat.find()) {
                repeat.appendReplacement(expanded, Matcher.quoteReplacement(repeat.group(2).repeat(Integer.parseInt(repeat.group(1)))));
            }
            repeat.appendTail(expanded);
            var out = new ByteArrayOutputStream();
            String s = expanded.toString();
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c != '\\' || i + 1 == s.length()) {
                    out.writeBytes(String.valueOf(c).getBytes(StandardCharsets.UTF_8));
                    continue;
                }
                char e = s.charAt(++i);
                int simple = "rnt0\\".indexOf(e);
                if (simple >= 0) {
                    out.write("\r\n\t\0\\".charAt(simple));
                } else if (e == 'x') {
                    out.write(Integer.parseInt(s.substring(i + 1, i + 3), 16));
                    i += 2;
                } else {
                    throw new IllegalArgumentException("unknown escape \\" + e + " in " + spec);
                }
            }
            return out.toByteArray();
        }
    }

    // ---- the stack ----------------------------------------------------------------------------

    /** GET / through nginx 200 from every replica (nginx may skip a peer it marked failed for a few seconds). */
    private static void assertServesOnEveryReplica() {
        Set<String> served = new HashSet<>();
        await("GET / through nginx served by every replica", Duration.ofSeconds(20))
                .ignoreExceptionsInstanceOf(IOException.class).until(() -> {
                    HttpResponse<String> r = Http.get(stack.uri("/"));
                    if (r.statusCode() == 200) {
                        r.headers().firstValue("X-Served-By").ifPresent(served::add);
                    }
                    return served.containsAll(stack.replicas());
                });
    }
}

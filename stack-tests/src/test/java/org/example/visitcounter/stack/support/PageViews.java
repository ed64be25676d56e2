package org.example.visitcounter.stack.support;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;

/**
 * The round-robin promise as curl shows it: successive page views ({@code GET /}) through nginx are served
 * by each replica in turn and count one each, whatever other requests a browser makes between them (0, 1
 * or 2 of assets, the icon, a read, a 404), because page views have an upstream of their own (nginx/proxy.conf).
 */
public final class PageViews {
    private static final List<String> OTHERS = List.of("/static/style.css", "/static/favicon.svg", "/favicon.ico", "/api/visits");

    private PageViews() {}

    /** Five rounds of page views over {@code replicas}; returns their responses, in order. */
    public static List<HttpResponse<String>> assertStrictRotation(URI base, int replicas) throws IOException {
        var pages = new ArrayList<HttpResponse<String>>();
        for (int i = 0; i < 5 * replicas; i++) {
            for (int j = 0; j < i % 3; j++) {
                Http.get(base.resolve(OTHERS.get((i + j) % OTHERS.size())));
            }
            var page = Http.get(base.resolve("/"));
            assertEquals(200, page.statusCode(), page::body);
            pages.add(page);
        }
        assertRotation(pages.stream().map(p -> header(p, "X-Served-By")).toList(),
                pages.stream().map(p -> Long.parseLong(header(p, "X-Visit-Count"))).toList(), replicas);
        return pages;
    }

    /** Successive page views, by who served them and the number each showed: each replica in turn, one count each. */
    public static void assertRotation(List<String> servedBy, List<Long> counts, int replicas) {
        String seen = "served by " + servedBy + ", counts " + counts;
        assertEquals(replicas, new HashSet<>(servedBy.subList(0, replicas)).size(),
                "the first page views hit every replica once: " + seen);
        for (int i = 1; i < servedBy.size(); i++) {
            if (i >= replicas) {
                assertEquals(servedBy.get(i - replicas), servedBy.get(i), "the rotation repeats: " + seen);
            }
            assertEquals(counts.get(i - 1) + 1, counts.get(i), "each page view counts exactly one: " + seen);
        }
    }

    public static String header(HttpResponse<?> response, String name) {
        return response.headers().firstValue(name)
                .orElseThrow(() -> new AssertionError("no " + name + " header: " + response.headers().map())).strip();
    }
}

package org.example.visitcounter;

import java.util.Map;
import org.example.visitcounter.RedisVisits.Visit;

/** The HTML page: works without JavaScript, styled by /static/style.css, no inline styles (CSP). */
final class VisitPage {
    private VisitPage() {}

    // Appended piece by piece into one buffer of about the page's size: rendered on every visit,
    // so no format string to parse and no buffer to grow.
    private static final String HEAD = """
            <!doctype html>
            <html lang="en">
            <head>
              <meta charset="utf-8">
              <meta name="viewport" content="width=device-width, initial-scale=1">
              <title>Visit\s""";
    private static final String COUNT = """
             · visit-counter</title>
              <link rel="stylesheet" href="/static/style.css">
            </head>
            <body>
              <main>
                <p class="label">This page has been visited</p>
                <p class="count" id="count">""";
    private static final String SERVED_BY = """
            </p>
                <p class="label">times. This visit was served by</p>
                <p class="replica" id="served-by">""";
    private static final String TALLY = """
            </p>
                <h2>Visits per replica</h2>
                <ul class="tally">
            """;
    private static final String TAIL = """
                </ul>
                <p class="hint">Refresh: nginx hands each request to the next replica in turn.</p>
              </main>
            </body>
            </html>
            """;

    static String render(Visit visit, String servedBy) {
        long most = visit.byReplica().values().stream().mapToLong(Long::longValue).max().orElse(1);
        var page = new StringBuilder(1024 + 160 * visit.byReplica().size());
        page.append(HEAD).append(visit.number()).append(COUNT).append(visit.number())
                .append(SERVED_BY).append(escape(servedBy)).append(TALLY);
        for (Map.Entry<String, Long> e : visit.byReplica().entrySet()) {
            boolean self = e.getKey().equals(servedBy);
            page.append("      <li").append(self ? " class=\"self\"" : "").append(">")
                    .append("<span class=\"name\">").append(escape(e.getKey())).append("</span>")
                    .append("<progress max=\"").append(most).append("\" value=\"").append(e.getValue()).append("\">")
                    .append(e.getValue()).append("</progress>")
                    .append("<span class=\"n\">").append(e.getValue()).append("</span></li>\n");
        }
        return page.append(TAIL).toString();
    }

    static String escape(String text) {
        var out = new StringBuilder(text.length());
        for (char c : text.toCharArray()) {
            switch (c) {
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '&' -> out.append("&amp;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> out.append(c);
            }
        }
        return out.toString();
    }
}

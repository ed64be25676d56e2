package org.example.visitcounter;

import java.util.Map;
import org.example.visitcounter.RedisVisits.Visit;

/** The HTML page: works without JavaScript, styled by /static/style.css, no inline styles (CSP). */
final class VisitPage {
    private VisitPage() {}

    // Appended piece by piece into one buffer of about the page's size: rendered on every visit,
    // so no format string to parse and no buffer to grow. ASCII only (&middot;, not the character
    // itself), so that encoding the page as UTF-8 is one copy, not a second buffer twice the size
    // (a fifth of the bytes a visit allocated: bench/RESULTS.md).
    private static final String HEAD = """
            <!doctype html>
            <html lang="en">
            <head>
              <meta charset="utf-8">
              <meta name="viewport" content="width=device-width, initial-scale=1">
              <meta name="description" content="A page that counts its visits and shows which replica served each one.">
              <title>Visit\s""";
    private static final String COUNT = """
             &middot; visit-counter</title>
              <link rel="stylesheet" href="/static/style.css">
              <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
            </head>
            <body>
              <main>
                <h1>visit-counter</h1>
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
                <p class="hint">Refresh: nginx hands each page view to the next replica in turn.</p>
              </main>
            </body>
            </html>
            """;

    static String render(Visit visit, String servedBy) {
        long most = 1;
        for (long n : visit.byReplica().values()) {
            most = Math.max(most, n);
        }
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

    /** {@code text} with HTML's special characters as entities; {@code text} itself when it has none. */
    static String escape(String text) {
        StringBuilder out = null; // made at the first special character: replica names have none
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            String entity = switch (c) {
                case '<' -> "&lt;";
                case '>' -> "&gt;";
                case '&' -> "&amp;";
                case '"' -> "&quot;";
                case '\'' -> "&#39;";
                default -> null;
            };
            if (entity != null && out == null) {
                out = new StringBuilder(text.length() + 16).append(text, 0, i);
            }
            if (entity != null) {
                out.append(entity);
            } else if (out != null) {
                out.append(c);
            }
        }
        return out == null ? text : out.toString();
    }
}

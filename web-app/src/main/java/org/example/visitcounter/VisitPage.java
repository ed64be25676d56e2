package org.example.visitcounter;

import java.util.Map;
import org.example.visitcounter.RedisVisits.Visit;

/** The HTML page: works without JavaScript, styled by /static/style.css, no inline styles (CSP). */
final class VisitPage {
    private VisitPage() {}

    static String render(Visit visit, String servedBy) {
        long most = visit.byReplica().values().stream().mapToLong(Long::longValue).max().orElse(1);
        var rows = new StringBuilder();
        for (Map.Entry<String, Long> e : visit.byReplica().entrySet()) {
            String name = escape(e.getKey());
            boolean self = e.getKey().equals(servedBy);
            rows.append("      <li").append(self ? " class=\"self\"" : "").append(">")
                    .append("<span class=\"name\">").append(name).append("</span>")
                    .append("<progress max=\"").append(most).append("\" value=\"").append(e.getValue()).append("\">")
                    .append(e.getValue()).append("</progress>")
                    .append("<span class=\"n\">").append(e.getValue()).append("</span></li>\n");
        }
        return """
                <!doctype html>
                <html lang="en">
                <head>
                  <meta charset="utf-8">
                  <meta name="viewport" content="width=device-width, initial-scale=1">
                  <title>Visit %1$d · visit-counter</title>
                  <link rel="stylesheet" href="/static/style.css">
                </head>
                <body>
                  <main>
                    <p class="label">This page has been visited</p>
                    <p class="count" id="count">%1$d</p>
                    <p class="label">times. This visit was served by</p>
                    <p class="replica" id="served-by">%2$s</p>
                    <h2>Visits per replica</h2>
                    <ul class="tally">
                %3$s    </ul>
                    <p class="hint">Refresh: nginx hands each request to the next replica in turn.</p>
                  </main>
                </body>
                </html>
                """.formatted(visit.number(), escape(servedBy), rows);
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

package org.example.visitcounter.dev;

/** The compile error as a stylesheet the page links to: CSS generated content, no inline style or script. */
final class Banner {
    private Banner() {}

    static String css(String errors) {
        if (errors.isEmpty()) {
            return "/* the sources compile: no banner */\n";
        }
        return "body::before { content: \"" + escape("Compile error (the previous build keeps serving):\n" + errors)
                + "\"; display: block; white-space: pre-wrap; font: 13px/1.4 monospace; text-align: left;"
                + " background: #b00020; color: #fff; padding: 1em; margin-bottom: 1em; }\n";
    }

    /** A CSS string: quotes, backslashes, control characters (line breaks) and angle brackets escaped, nothing else can end it. */
    private static String escape(String text) {
        var out = new StringBuilder();
        text.codePoints().forEach(c -> {
            if (c == '"' || c == '\\' || c < 0x20 || c == '<' || c == '>') {
                out.append('\\').append(Integer.toHexString(c)).append(' ');
            } else {
                out.appendCodePoint(c);
            }
        });
        return out.toString();
    }
}

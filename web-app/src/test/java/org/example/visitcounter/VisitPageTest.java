package org.example.visitcounter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.TreeMap;
import org.example.visitcounter.RedisVisits.Visit;
import org.junit.jupiter.api.Test;

class VisitPageTest {
    @Test
    void namesAreEscapedWhereverTheyAppear() {
        String name = "<b>\"web\" & 'co'</b>";
        var tallies = new TreeMap<String, Long>();
        tallies.put(name, 2L);
        tallies.put("web-2", 5L);
        String page = VisitPage.render(new Visit(7, false, tallies), name);
        String escaped = "&lt;b&gt;&quot;web&quot; &amp; &#39;co&#39;&lt;/b&gt;";
        assertTrue(page.contains("<p class=\"replica\" id=\"served-by\">" + escaped + "</p>"), page);
        assertTrue(page.contains("<li class=\"self\"><span class=\"name\">" + escaped + "</span><progress max=\"5\" value=\"2\">"), page);
        assertTrue(!page.contains(name), page);
    }

    @Test
    void aNameWithNothingToEscapeIsUsedAsItIs() {
        String name = "web-1";
        assertSame(name, VisitPage.escape(name));
        assertEquals("a&amp;b", VisitPage.escape("a&b"));
    }

    @Test
    void thePageIsAsciiSoItsUtf8IsOneCopy() {
        var tallies = new TreeMap<String, Long>();
        tallies.put("web-1", 1L);
        String page = VisitPage.render(new Visit(1, false, tallies), "web-1");
        assertEquals(page.length(), page.getBytes(StandardCharsets.UTF_8).length, "one byte per character");
    }
}

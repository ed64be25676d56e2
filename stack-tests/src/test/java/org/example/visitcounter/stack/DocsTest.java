package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.commonmark.node.AbstractVisitor;
import org.commonmark.node.FencedCodeBlock;
import org.commonmark.node.Heading;
import org.commonmark.node.Image;
import org.commonmark.node.Link;
import org.commonmark.node.Node;
import org.commonmark.node.Text;
import org.commonmark.parser.Parser;
import org.example.visitcounter.stack.support.DocCommands;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Test;

/**
 * README.md and the pages under docs/, read as Markdown's tree (links, headings, fenced blocks),
 * never as prose: a reworded sentence cannot break this test, a dead link or a lost page can.
 * No engine, no network.
 */
class DocsTest {
    private static final Path ROOT = Project.root();
    /** The test command that .ci/run runs and README's "Tests" shows, character for character. */
    private static final String TEST_COMMAND = "npm ci && ./mvnw -B verify";
    private static final Pattern SCHEME = Pattern.compile("^[a-zA-Z][a-zA-Z0-9+.-]*:");
    private static final Parser MARKDOWN = Parser.builder().build();

    @Test
    void everyRelativeLinkAndImagePointsToAFileOfTheRepository() throws IOException {
        var dead = new ArrayList<String>();
        for (Path page : pages()) {
            Node doc = parse(page);
            var targets = new ArrayList<String>();
            nodes(doc, Link.class).forEach(link -> targets.add(link.getDestination()));
            nodes(doc, Image.class).forEach(image -> targets.add(image.getDestination()));
            for (String target : targets) {
                if (target.startsWith("#") || SCHEME.matcher(target).find()) {
                    continue; // a heading of the same page, or a web address: not ours to check offline
                }
                String file = target.replaceFirst("#.*", "");
                if (!Files.exists(page.getParent().resolve(file))) {
                    dead.add(ROOT.relativize(page) + ": " + target);
                }
            }
        }
        assertEquals(List.of(), dead, "links to files that do not exist");
    }

    @Test
    void readmesMapLinksEveryDocsPage() throws IOException {
        List<String> mapped = section(parse(ROOT.resolve("README.md")), "Documentation").stream()
                .flatMap(node -> nodes(node, Link.class).stream())
                .map(Link::getDestination)
                .toList();
        List<String> pages;
        try (Stream<Path> docs = Files.list(ROOT.resolve("docs"))) {
            pages = docs.filter(p -> p.toString().endsWith(".md")).map(p -> "docs/" + p.getFileName()).sorted().toList();
        }
        assertFalse(pages.isEmpty(), "no pages under docs/");
        assertEquals(List.of(), pages.stream().filter(p -> !mapped.contains(p)).toList(),
                "docs pages missing from README's \"Documentation\" map");
    }

    @Test
    void everyConsoleBlockIsCommandsEachWithItsOutput() throws IOException {
        var blocks = 0;
        for (Path page : pages()) {
            for (FencedCodeBlock block : consoleBlocks(parse(page))) {
                List<String> commands = commands(block);
                assertFalse(commands.isEmpty(), ROOT.relativize(page) + ": a console block without a `$ ` line");
                assertTrue(block.getLiteral().startsWith("$ "),
                        ROOT.relativize(page) + ": a console block starts with output, not a command:\n" + block.getLiteral());
                commands.forEach(c -> assertFalse(c.isBlank(), ROOT.relativize(page) + ": an empty command"));
                blocks++;
            }
        }
        assertTrue(blocks >= 10, "console blocks found: " + blocks); // README alone has three
    }

    @Test
    void readmesTestsBlockHoldsTheCommandCiRuns() throws IOException {
        List<String> commands = section(parse(ROOT.resolve("README.md")), "Tests").stream()
                .flatMap(node -> consoleBlocks(node).stream())
                .flatMap(block -> commands(block).stream())
                .toList();
        assertTrue(commands.contains(TEST_COMMAND), "README's \"Tests\" commands: " + commands);
        assertTrue(Files.readAllLines(ROOT.resolve(".ci/run")).contains(TEST_COMMAND),
                ".ci/run no longer runs README's test command as it stands: " + TEST_COMMAND);
    }

    /** The docker commands the Compose tests run (DocCommands) stand, word for word, on the page that documents them. */
    @Test
    void theDockerCommandsTheTestsRunAreTheOnesTheDocsShow() throws IOException {
        Map<String, List<String>> shown = Map.of(
                "README.md", List.of(DocCommands.UP, DocCommands.DOWN),
                "docs/development.md", List.of(DocCommands.WATCH, DocCommands.DEV_UP, DocCommands.DEV_WATCH),
                "docs/production.md", List.of(DocCommands.PROD_BUILD, DocCommands.PROD_PUSH, DocCommands.PROD_UP,
                        DocCommands.SCALE_TO_5));
        for (var page : shown.entrySet()) {
            List<String> commands = consoleBlocks(parse(ROOT.resolve(page.getKey()))).stream()
                    .flatMap(block -> commands(block).stream())
                    .map(c -> c.replaceFirst("\\s+#.*$", "").strip())
                    .toList();
            for (String command : page.getValue()) {
                assertTrue(commands.contains("docker " + command),
                        page.getKey() + " no longer shows `docker " + command + "`, which the tests run; its commands: " + commands);
            }
        }
    }

    /** The commands of a console block: its `$ ` lines without the prompt (what a user types). */
    static List<String> commands(FencedCodeBlock block) {
        return block.getLiteral().lines().filter(line -> line.startsWith("$ ")).map(line -> line.substring(2)).toList();
    }

    private static List<Path> pages() throws IOException {
        try (Stream<Path> docs = Files.list(ROOT.resolve("docs"))) {
            return Stream.concat(Stream.of(ROOT.resolve("README.md")), docs.filter(p -> p.toString().endsWith(".md")).sorted())
                    .toList();
        }
    }

    private static Node parse(Path page) throws IOException {
        return MARKDOWN.parse(Files.readString(page));
    }

    private static List<FencedCodeBlock> consoleBlocks(Node root) {
        return nodes(root, FencedCodeBlock.class).stream().filter(b -> "console".equals(b.getInfo())).toList();
    }

    /** The blocks after the heading whose text is {@code title}, up to the next heading of its level or above. */
    private static List<Node> section(Node document, String title) {
        Map<String, Heading> headings = new TreeMap<>();
        nodes(document, Heading.class).forEach(h -> headings.put(text(h), h));
        Heading heading = headings.get(title);
        assertTrue(heading != null, "no heading \"" + title + "\"; headings: " + headings.keySet());
        var blocks = new ArrayList<Node>();
        for (Node n = heading.getNext(); n != null && !(n instanceof Heading h && h.getLevel() <= heading.getLevel()); n = n.getNext()) {
            blocks.add(n);
        }
        return blocks;
    }

    private static String text(Node node) {
        var text = new StringBuilder();
        node.accept(new AbstractVisitor() {
            @Override
            public void visit(Text t) {
                text.append(t.getLiteral());
            }
        });
        return text.toString();
    }

    /** Every node of {@code type} in the tree under {@code root}, itself included. */
    private static <T extends Node> List<T> nodes(Node root, Class<T> type) {
        var found = new ArrayList<T>();
        collect(root, type, found);
        return found;
    }

    private static <T extends Node> void collect(Node node, Class<T> type, List<T> found) {
        if (type.isInstance(node)) {
            found.add(type.cast(node));
        }
        for (Node child = node.getFirstChild(); child != null; child = child.getNext()) {
            collect(child, type, found);
        }
    }
}

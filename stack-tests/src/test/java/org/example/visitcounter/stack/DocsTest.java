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
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.commonmark.node.FencedCodeBlock;
import org.commonmark.node.Heading;
import org.commonmark.node.Image;
import org.commonmark.node.Link;
import org.commonmark.node.Node;
import org.commonmark.parser.Parser;
import org.commonmark.renderer.text.TextContentRenderer;
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
    private static final TextContentRenderer TEXT = TextContentRenderer.builder().build();

    @Test
    void everyRelativeLinkAndImagePointsToAFileOfTheRepository() throws IOException {
        var dead = new ArrayList<String>();
        for (Path page : pages()) {
            Node doc = parse(page);
            Stream.concat(nodes(doc, Link.class).map(Link::getDestination), nodes(doc, Image.class).map(Image::getDestination))
                    // A heading of the same page, or a web address: not ours to check offline.
                    .filter(target -> !target.startsWith("#") && !SCHEME.matcher(target).find())
                    .filter(target -> !Files.exists(page.getParent().resolve(target.replaceFirst("#.*", ""))))
                    .forEach(target -> dead.add(ROOT.relativize(page) + ": " + target));
        }
        assertEquals(List.of(), dead, "links to files that do not exist");
    }

    @Test
    void readmesMapLinksEveryDocsPage() throws IOException {
        List<String> mapped = section(parse(ROOT.resolve("README.md")), "Documentation")
                .flatMap(node -> nodes(node, Link.class)).map(Link::getDestination).toList();
        List<String> docs = pages().stream().skip(1).map(page -> ROOT.relativize(page).toString()).toList();
        assertFalse(docs.isEmpty(), "no pages under docs/");
        assertEquals(List.of(), docs.stream().filter(p -> !mapped.contains(p)).toList(),
                "docs pages missing from README's \"Documentation\" map");
    }

    @Test
    void everyConsoleBlockStartsWithACommand() throws IOException {
        var blocks = 0;
        for (Path page : pages()) {
            for (FencedCodeBlock block : consoleBlocks(parse(page)).toList()) {
                assertTrue(block.getLiteral().startsWith("$ "),
                        ROOT.relativize(page) + ": a console block starts with output, not a command:\n" + block.getLiteral());
                commands(Stream.of(block)).forEach(c -> assertFalse(c.isBlank(), ROOT.relativize(page) + ": an empty command"));
                blocks++;
            }
        }
        assertTrue(blocks >= 10, "console blocks found: " + blocks); // README alone has three
    }

    @Test
    void readmesTestsBlockHoldsTheCommandCiRuns() throws IOException {
        List<String> commands = commands(section(parse(ROOT.resolve("README.md")), "Tests"));
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
            List<String> commands = commands(Stream.of(parse(ROOT.resolve(page.getKey())))).stream()
                    .map(c -> c.replaceFirst("\\s+#.*$", "").strip()).toList();
            page.getValue().forEach(command -> assertTrue(commands.contains("docker " + command), page.getKey()
                    + " no longer shows `docker " + command + "`, which the tests run; its commands: " + commands));
        }
    }

    /** README.md, then the pages under docs/. */
    private static List<Path> pages() {
        Stream<String> docs = Stream.of(ROOT.resolve("docs").toFile().list()).filter(f -> f.endsWith(".md")).sorted();
        return Stream.concat(Stream.of("README.md"), docs.map("docs/"::concat)).map(ROOT::resolve).toList();
    }

    private static Node parse(Path page) throws IOException {
        return MARKDOWN.parse(Files.readString(page));
    }

    /** The commands of the console blocks in {@code trees}: their `$ ` lines without the prompt (what a user types). */
    private static List<String> commands(Stream<? extends Node> trees) {
        return trees.flatMap(DocsTest::consoleBlocks).flatMap(block -> block.getLiteral().lines())
                .filter(line -> line.startsWith("$ ")).map(line -> line.substring(2)).toList();
    }

    private static Stream<FencedCodeBlock> consoleBlocks(Node root) {
        return nodes(root, FencedCodeBlock.class).filter(block -> "console".equals(block.getInfo()));
    }

    /** The blocks after the heading whose text is {@code title}, up to the next heading of its level or above. */
    private static Stream<Node> section(Node document, String title) {
        Heading heading = nodes(document, Heading.class).filter(h -> TEXT.render(h).strip().equals(title)).findFirst()
                .orElseThrow(() -> new AssertionError("no heading \"" + title + "\"; headings: "
                        + nodes(document, Heading.class).map(h -> TEXT.render(h).strip()).toList()));
        return Stream.iterate(heading.getNext(),
                n -> n != null && !(n instanceof Heading h && h.getLevel() <= heading.getLevel()), Node::getNext);
    }

    /** Every node of {@code type} in the tree under {@code root}, itself included, in document order. */
    private static <T extends Node> Stream<T> nodes(Node root, Class<T> type) {
        Stream<Node> children = Stream.iterate(root.getFirstChild(), Objects::nonNull, Node::getNext);
        return Stream.concat(Stream.of(root).filter(type::isInstance).map(type::cast), children.flatMap(c -> nodes(c, type)));
    }
}

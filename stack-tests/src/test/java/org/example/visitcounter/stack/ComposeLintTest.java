package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Processes.Outcome;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs dclint (node_modules/.bin/dclint, installed by {@code npm ci}) on every compose file, one by
 * one and as the set, with the committed .dclintrc (dclint finds it in its working directory, the
 * repository root). A file passes with no errors and no warnings: a rule is relaxed only in
 * .dclintrc, with its reason.
 */
class ComposeLintTest {

    static final List<String> COMPOSE_FILES = List.of("compose.yaml", "dev.compose.yaml", "prod.compose.yaml");

    @TempDir
    Path tmp;

    /** dclint checks each file on its own and reports one result per file. */
    @Test
    void everyComposeFilePassesDclint() throws Exception {
        assertLintClean(COMPOSE_FILES);
    }

    @Test
    void baseFileNamesTheProjectAndOverlaysDoNot() throws IOException {
        // .dclintrc turns require-project-name-field off because the overlays must not carry a
        // `name` (docker stack deploy rejects it); the base file must still have it.
        Path root = Project.root();
        Pattern topLevelName = Pattern.compile("(?m)^name:\\s*visit-counter\\s*$");
        assertTrue(topLevelName.matcher(Files.readString(root.resolve("compose.yaml"))).find(),
                "compose.yaml must set the project name at top level: `name: visit-counter`");
        Pattern anyTopLevelName = Pattern.compile("(?m)^name:");
        for (String overlay : List.of("dev.compose.yaml", "prod.compose.yaml")) {
            assertTrue(!anyTopLevelName.matcher(Files.readString(root.resolve(overlay))).find(),
                    overlay + " must not set a top-level `name` (it inherits compose.yaml's)");
        }
    }

    @Test
    void theWebBuildTrainsAgainstTheStacksOwnRedis() throws IOException {
        // compose.yaml passes its pin to the build; the Dockerfile's default serves a plain
        // `docker build` and must not drift from it.
        Path root = Project.root();
        var compose = Pattern.compile("(?m)^    image: &redis-image \\$\\{REDIS_IMAGE:-([^}]+)}$")
                .matcher(Files.readString(root.resolve("compose.yaml")));
        var dockerfile = Pattern.compile("(?m)^ARG REDIS_IMAGE=(\\S+)$")
                .matcher(Files.readString(root.resolve("web-app/Dockerfile")));
        assertTrue(compose.find(), "compose.yaml: redis's image: &redis-image ${REDIS_IMAGE:-...}");
        assertTrue(dockerfile.find(), "web-app/Dockerfile: ARG REDIS_IMAGE=...");
        assertEquals(compose.group(1), dockerfile.group(1), "the Redis pin of compose.yaml and of web-app/Dockerfile");
    }

    private void assertLintClean(List<String> files) throws Exception {
        Path dclint = Project.root().resolve("node_modules/.bin/dclint");
        assertTrue(Files.isRegularFile(dclint), dclint + " is missing: run `npm ci` (it installs dclint from package.json)");
        files.forEach(file -> assertTrue(Files.isRegularFile(Project.root().resolve(file)), "missing compose file " + file));
        Path report = tmp.resolve("dclint-report.json");
        List<String> command = new ArrayList<>(List.of(dclint.toString(), "--formatter", "json", "--output-file", report.toString()));
        command.addAll(files);
        // In the repository root, where dclint looks for .dclintrc.
        Outcome run = Processes.run(Duration.ofMinutes(2), command, Map.of());
        assertTrue(Files.isRegularFile(report), "dclint wrote no report (exit " + run.status()
                + ", is Node.js >= 20 on the PATH?); output:\n" + run.output());
        JsonNode results = new ObjectMapper().readTree(report.toFile());
        assertEquals(files.size(), results.size(), "one result per file expected: " + results);
        var problems = new StringBuilder();
        for (JsonNode result : results) {
            for (JsonNode message : result.path("messages")) {
                problems.append(String.format("%n  %s:%d  %s  %s  (%s)", result.path("filePath").asText(),
                        message.path("line").asInt(), message.path("type").asText(), message.path("message").asText(),
                        message.path("rule").asText()));
            }
        }
        // Errors and warnings alike: fix them (many with `node_modules/.bin/dclint --fix <file>`), or
        // relax the rule in .dclintrc with the reason next to it.
        assertEquals("0 errors, 0 warnings", results.findValues("errorCount").stream().mapToInt(JsonNode::asInt).sum()
                + " errors, " + results.findValues("warningCount").stream().mapToInt(JsonNode::asInt).sum() + " warnings",
                "dclint on " + files + ":" + problems);
        assertEquals(0, run.status(), "dclint exited " + run.status() + "; output:\n" + run.output());
    }
}

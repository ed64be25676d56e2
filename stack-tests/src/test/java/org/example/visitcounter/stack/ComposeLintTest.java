package org.example.visitcounter.stack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.example.visitcounter.stack.support.Processes;
import org.example.visitcounter.stack.support.Processes.Outcome;
import org.example.visitcounter.stack.support.Project;
import org.junit.jupiter.api.Test;

/**
 * Runs dclint (node_modules/.bin/dclint, installed by {@code npm ci}) on every compose file, with
 * the committed .dclintrc (dclint finds it in its working directory, the repository root). A file
 * passes with no errors and no warnings: a rule is relaxed only in .dclintrc, with its reason.
 */
class ComposeLintTest {
    private static final Path ROOT = Project.root();

    /** dclint checks each file on its own and reports one result per file. */
    @Test
    void everyComposeFilePassesDclint() throws Exception {
        List<String> files = List.of("compose.yaml", "dev.compose.yaml", "prod.compose.yaml");
        Path dclint = ROOT.resolve("node_modules/.bin/dclint");
        assertTrue(Files.isRegularFile(dclint), dclint + " is missing: run `npm ci` (it installs dclint from package.json)");
        Outcome run = Processes.run(Duration.ofMinutes(2),
                Stream.concat(Stream.of(dclint.toString(), "--formatter", "json"), files.stream()).toList(), Map.of());
        assertTrue(run.stdout().strip().startsWith("["), "dclint printed no JSON report (exit " + run.status()
                + ", is Node.js >= 20 on the PATH?); output:\n" + run.output());
        JsonNode results = new ObjectMapper().readTree(run.stdout());
        assertEquals(files.size(), results.size(), "one result per file expected: " + results);
        // Errors and warnings alike (`node_modules/.bin/dclint --fix <file>` fixes many).
        List<String> problems = results.valueStream().flatMap(result -> result.path("messages").valueStream()
                .map(m -> String.format("%s:%d  %s  %s  (%s)", result.path("filePath").asText(), m.path("line").asInt(),
                        m.path("type").asText(), m.path("message").asText(), m.path("rule").asText()))).toList();
        assertEquals(List.of(), problems, "dclint on " + files + " (every error and warning is a message)");
        assertEquals(0, run.status(), "dclint exited " + run.status() + "; output:\n" + run.output());
    }

    /** .dclintrc turns require-project-name-field off for the overlays (docker stack deploy rejects a `name`). */
    @Test
    void baseFileNamesTheProjectAndOverlaysDoNot() throws IOException {
        assertTrue(Pattern.compile("(?m)^name:\\s*visit-counter\\s*$").matcher(read("compose.yaml")).find(),
                "compose.yaml must set the project name at top level: `name: visit-counter`");
        for (String overlay : List.of("dev.compose.yaml", "prod.compose.yaml")) {
            assertFalse(Pattern.compile("(?m)^name:").matcher(read(overlay)).find(),
                    overlay + " must not set a top-level `name` (it inherits compose.yaml's)");
        }
    }

    /** compose.yaml passes its Redis pin to the build; the Dockerfile's default serves a plain `docker build`. */
    @Test
    void theWebBuildTrainsAgainstTheStacksOwnRedis() throws IOException {
        var compose = Pattern.compile("(?m)^    image: &redis-image \\$\\{REDIS_IMAGE:-([^}]+)}$").matcher(read("compose.yaml"));
        var dockerfile = Pattern.compile("(?m)^ARG REDIS_IMAGE=(\\S+)$").matcher(read("web-app/Dockerfile"));
        assertTrue(compose.find(), "compose.yaml: redis's image: &redis-image ${REDIS_IMAGE:-...}");
        assertTrue(dockerfile.find(), "web-app/Dockerfile: ARG REDIS_IMAGE=...");
        assertEquals(compose.group(1), dockerfile.group(1), "the Redis pin of compose.yaml and of web-app/Dockerfile");
    }

    private static String read(String file) throws IOException {
        return Files.readString(ROOT.resolve(file));
    }
}

package org.example.visitcounter.stack.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The repository the tests run against. */
public final class Project {
    private Project() {}

    /** The one rule: the {@code projectRoot} system property, which surefire sets (stack-tests/pom.xml). */
    public static Path root() {
        String property = System.getProperty("projectRoot");
        if (property == null || property.isBlank()) {
            throw new IllegalStateException("no projectRoot system property: run through Maven, or set -DprojectRoot=<repo>");
        }
        Path root = Path.of(property).toAbsolutePath().normalize();
        if (!Files.isRegularFile(root.resolve("compose.yaml"))) {
            throw new IllegalStateException("projectRoot " + root + " holds no compose.yaml");
        }
        return root;
    }

    /** A new directory under stack-tests/target/{@code kind}/, left there for a post-mortem. */
    public static Path newDirectory(String kind, String prefix) {
        try {
            return Files.createTempDirectory(Files.createDirectories(root().resolve("stack-tests/target/" + kind)), prefix);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

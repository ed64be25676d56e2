package org.example.visitcounter.stack.support;

/**
 * The docker commands the documentation shows, word for word, as the Compose tests run them (without the
 * leading {@code docker}). DocsTest checks that README.md and docs/ still show them.
 */
public final class DocCommands {
    private DocCommands() {}

    // README.md, "Run it"; docs/production.md, "Scaling" for --scale.
    public static final String UP = "compose up --build -d --wait";
    public static final String UP_AGAIN = "compose up -d --wait";
    public static final String SCALE_TO_5 = "compose up -d --scale web=5";
    public static final String SCALE_TO_3 = "compose up -d --scale web=3";
    public static final String DOWN = "compose down";
    public static final String DOWN_VOLUMES = "compose down -v";

    // docs/development.md.
    public static final String DEV_FILES = "compose -f compose.yaml -f dev.compose.yaml ";
    public static final String WATCH = DEV_FILES + "up --build --watch";
    public static final String DEV_UP = DEV_FILES + "up --build -d --wait";
    public static final String DEV_WATCH = DEV_FILES + "watch";

    // docs/production.md: build, push, pull and up with the prod overlay.
    public static final String PROD_FILES = "compose -f compose.yaml -f prod.compose.yaml ";
    public static final String PROD_BUILD = PROD_FILES + "build";
    public static final String PROD_PUSH = PROD_FILES + "push";
    public static final String PROD_UP = PROD_FILES + "up -d --wait";
    public static final String PROD_DOWN = PROD_FILES + "down";
    public static final String PROD_DOWN_VOLUMES = PROD_FILES + "down -v";
}

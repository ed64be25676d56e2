package org.example.visitcounter.stack.support;

/**
 * The docker commands the documentation shows, word for word, as the Compose tests run them
 * (without the leading {@code docker}). The one place to change when the docs move: today they are
 * README.md's sections "Run it", "Develop with `compose watch`", "Production" and its "Scaling".
 */
public final class DocCommands {
    private DocCommands() {}

    // README.md, "Run it", and "Production", "Scaling" for --scale.
    public static final String UP = "compose up --build -d --wait";
    public static final String UP_AGAIN = "compose up -d --wait";
    public static final String SCALE_TO_5 = "compose up -d --scale web=5";
    public static final String SCALE_TO_3 = "compose up -d --scale web=3";
    public static final String DOWN = "compose down";
    public static final String DOWN_VOLUMES = "compose down -v";

    // README.md, "Develop with `compose watch`".
    public static final String DEV_FILES = "compose -f compose.yaml -f dev.compose.yaml ";
    public static final String WATCH = DEV_FILES + "up --build --watch";

    // README.md, "Production": build, push, pull and up with the prod overlay.
    public static final String PROD_FILES = "compose -f compose.yaml -f prod.compose.yaml ";
    public static final String PROD_BUILD = PROD_FILES + "build";
    public static final String PROD_PUSH = PROD_FILES + "push";
    public static final String PROD_UP = PROD_FILES + "up -d --wait";
    public static final String PROD_DOWN = PROD_FILES + "down";
    public static final String PROD_DOWN_VOLUMES = PROD_FILES + "down -v";
}

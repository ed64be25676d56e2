package org.example.visitcounter.stack.support;

import com.deque.html.axecore.selenium.AxeBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.io.FileHandler;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.logging.LoggingPreferences;

/**
 * A real browser: Debian's headless Chromium driven through its chromedriver (WebDriver), so nothing
 * is downloaded at test time. One browser, one tab, its own empty profile (ours, not chromedriver's:
 * with chromedriver's, Chromium leaves its singleton socket's directory in /tmp).
 */
public final class Browser implements AutoCloseable {
    private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    private static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");

    private final Path profile;
    private final ChromeDriver driver;

    private Browser(Path profile, ChromeDriver driver) {
        this.profile = profile;
        this.driver = driver;
    }

    /** Skips the test where Debian's chromium and chromium-driver are not installed; in CI, fails. */
    public static void assumeAvailable() {
        for (Path tool : List.of(CHROMIUM, CHROMEDRIVER)) {
            Processes.assumeTool("apt-get install chromium chromium-driver", tool.toString(), "--version");
        }
    }

    public static Browser start() throws IOException {
        Path profile = Files.createTempDirectory("vc-chromium-");
        var options = new ChromeOptions().setBinary(CHROMIUM.toFile()).addArguments(
                "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,760",
                "--user-data-dir=" + profile,
                // Nothing but the page under test: this machine's network is closed, and Chromium's
                // own background connections would only be refused.
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic");
        var logs = new LoggingPreferences();
        logs.enable(LogType.BROWSER, Level.ALL);
        options.setCapability("goog:loggingPrefs", logs);
        var service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
                .usingAnyFreePort().build();
        return new Browser(profile, new ChromeDriver(service, options));
    }

    /** Loads {@code uri}; returns once the page and its subresources have loaded. */
    public void open(URI uri) {
        driver.get(uri.toString());
    }

    /** What the reload button does (the cache revalidates what it holds); returns once loaded. */
    public void reload() {
        driver.navigate().refresh();
    }

    public void disableCache(boolean disabled) {
        driver.executeCdpCommand("Network.enable", Map.of());
        driver.executeCdpCommand("Network.setCacheDisabled", Map.of("cacheDisabled", disabled));
    }

    public void prefersColorScheme(String scheme) {
        driver.executeCdpCommand("Emulation.setEmulatedMedia",
                Map.of("features", List.of(Map.of("name", "prefers-color-scheme", "value", scheme))));
    }

    public String text(String cssSelector) {
        return driver.findElement(By.cssSelector(cssSelector)).getText().strip();
    }

    /** The console's errors since the last call: failed loads (a 404 included), CSP refusals, script errors. */
    public List<String> consoleErrors() {
        return driver.manage().logs().get(LogType.BROWSER).getAll().stream()
                .filter(entry -> entry.getLevel().intValue() >= Level.SEVERE.intValue())
                .map(LogEntry::getMessage).toList();
    }

    /** axe-core's violations on the current page (WCAG 2 A/AA and its best practices), one line each. */
    public List<String> accessibilityViolations() {
        return new AxeBuilder().analyze(driver).getViolations().stream().map(rule -> rule.getId() + " ("
                + rule.getImpact() + "): " + rule.getHelp() + " " + rule.getNodes().stream()
                .map(node -> String.valueOf(node.getTarget())).toList()).toList();
    }

    public void screenshot(Path file) {
        try {
            Files.createDirectories(file.getParent());
            Files.write(file, driver.getScreenshotAs(OutputType.BYTES));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        try {
            driver.quit();
        } finally {
            FileHandler.delete(profile.toFile());
        }
    }
}

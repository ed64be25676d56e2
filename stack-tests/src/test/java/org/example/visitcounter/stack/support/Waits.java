package org.example.visitcounter.stack.support;

import java.time.Duration;
import java.util.concurrent.Callable;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionFactory;
import org.awaitility.core.ConditionTimeoutException;
import org.awaitility.core.TerminalFailureException;

/**
 * The tests' one way to wait, Awaitility, set up as the loops it replaced were: the condition
 * checked at once, then every 50 ms unless the caller says otherwise, in the test's own thread,
 * and other threads' uncaught exceptions (the load's) left alone.
 */
public final class Waits {
    private Waits() {}

    public static ConditionFactory await(String what, Duration atMost) {
        return Awaitility.await(what).atMost(atMost).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(50))
                .pollInSameThread().dontCatchUncaughtExceptions();
    }

    /**
     * Runs {@code wait}; if it times out, fails fast, or a check in it fails, the failure ends with
     * what {@code explanation} says then.
     */
    public static void explained(Runnable wait, Callable<String> explanation) {
        try {
            wait.run();
        } catch (ConditionTimeoutException | TerminalFailureException | AssertionError e) {
            String more;
            try {
                more = explanation.call();
            } catch (Exception | AssertionError d) {
                more = "(no explanation: " + d + ")";
            }
            throw new AssertionError(e.getMessage() + "\n" + more, e);
        }
    }
}

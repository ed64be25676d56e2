package org.example.visitcounter;

import java.time.Duration;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionFactory;

/**
 * The tests' one way to wait, Awaitility, set up as the loops it replaced were: the condition
 * checked at once, then every 50 ms unless the caller says otherwise, in the test's own thread,
 * and other threads' uncaught exceptions (the app's, Testcontainers') left alone.
 */
final class Waits {
    private Waits() {}

    static ConditionFactory await(String what, Duration atMost) {
        return Awaitility.await(what).atMost(atMost).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(50))
                .pollInSameThread().dontCatchUncaughtExceptions();
    }
}

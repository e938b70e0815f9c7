package dev.guard.storage.tck;

import org.junit.jupiter.api.Assumptions;

/**
 * For tests that need a real server (Redis, PostgreSQL, MariaDB): on a developer's machine without the server
 * they skip with a message that says how to run them; under {@code CI=true} they fail instead, so CI can never
 * pass by skipping.
 */
public final class RequiredServer {
    private RequiredServer() {}

    /** Whether this run is CI ({@code CI=true} in the environment), where servers are mandatory. */
    public static boolean isCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** The value of environment variable {@code name}, or {@code fallback} when it is unset or blank. */
    public static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }

    /**
     * Skips the calling test (or fails it under CI) unless {@code reachable}.
     *
     * @param what the server, such as {@code "Redis at 127.0.0.1:6379"} (never with credentials)
     * @param reachable whether a probe reached it
     * @param howToRun what to start or set to run these tests, such as {@code "start redis-server or set
     *     GUARD_REDIS_URI"}
     * @param cause the probe's failure, or null
     */
    public static void assume(String what, boolean reachable, String howToRun, Throwable cause) {
        if (reachable) {
            return;
        }
        String message =
                what + " is not reachable" + (cause == null ? "" : " (" + cause.getMessage() + ")") + "; " + howToRun;
        if (isCi()) {
            throw new AssertionError("CI=true requires the server: " + message, cause);
        }
        Assumptions.abort(message);
    }
}

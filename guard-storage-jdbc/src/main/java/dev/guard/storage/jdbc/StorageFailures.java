package dev.guard.storage.jdbc;

import dev.guard.spi.GuardStorageException;
import java.sql.SQLException;
import java.util.regex.Pattern;

/**
 * Turns JDBC failures into {@link GuardStorageException}s whose messages, and the messages of their causes, carry no
 * password and no URL credentials, whatever the driver put in its own message.
 */
final class StorageFailures {
    static final String BACKEND = "jdbc";

    private static final Pattern SECRET_PARAMETER =
            Pattern.compile("(?i)\\b(password|passwd|pwd|secret|sslpassword)(\\s*[=:]\\s*)[^\\s&;,)'\"]+");
    private static final Pattern URL_USER_INFO = Pattern.compile("//[^/\\s@]+@");
    private static final int MAX_CAUSES = 8;

    private StorageFailures() {}

    static GuardStorageException of(JdbcDialect dialect, String operation, Throwable cause) {
        StringBuilder message = new StringBuilder(dialect == null ? "database" : dialect.label());
        if (cause instanceof SQLException sql && sql.getSQLState() != null) {
            message.append(" sqlstate ").append(sql.getSQLState());
        }
        message.append(": ").append(redact(String.valueOf(cause.getMessage())));
        return new GuardStorageException(BACKEND, operation, message.toString(), scrub(cause, 0));
    }

    /** {@code text} with passwords and URL user info replaced by {@code ***}. */
    static String redact(String text) {
        String out = SECRET_PARAMETER.matcher(text).replaceAll("$1$2***");
        return URL_USER_INFO.matcher(out).replaceAll("//***@");
    }

    /**
     * The cause itself when its message (and its causes') hold nothing to redact; otherwise a copy with the redacted
     * message and the original stack trace, so a logged stack trace never shows a secret either.
     */
    private static Throwable scrub(Throwable t, int depth) {
        if (t == null || depth >= MAX_CAUSES) {
            return null;
        }
        Throwable cause = t.getCause() == t ? null : t.getCause();
        Throwable scrubbedCause = scrub(cause, depth + 1);
        String message = t.getMessage();
        String redacted = message == null ? null : redact(message);
        if (scrubbedCause == cause && (message == null || message.equals(redacted))) {
            return t;
        }
        Throwable copy = t instanceof SQLException sql
                ? new SQLException(t.getClass().getName() + ": " + redacted, sql.getSQLState(), sql.getErrorCode())
                : new RuntimeException(t.getClass().getName() + ": " + redacted);
        copy.setStackTrace(t.getStackTrace());
        if (scrubbedCause != null) {
            copy.initCause(scrubbedCause);
        }
        return copy;
    }
}

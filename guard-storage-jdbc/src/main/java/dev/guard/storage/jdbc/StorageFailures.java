package dev.guard.storage.jdbc;

import dev.guard.spi.GuardStorageException;
import java.sql.SQLException;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns JDBC failures into {@link GuardStorageException}s whose messages, and the messages of their causes, carry no
 * password and no URL credentials, whatever the driver put in its own message.
 */
final class StorageFailures {
    static final String BACKEND = "jdbc";

    /**
     * A key that names a secret ({@code password}, {@code sslPassword}, {@code trustStorePassword}, {@code
     * client_secret}, quoted or not), a {@code =} or {@code :}, and its value: quoted in single or double quotes (with
     * backslash or doubled-quote escapes; an unclosed quote runs to the end of the line), or bare up to a delimiter.
     * MySQL's "(using password: YES)" names no secret and stays readable.
     */
    private static final Pattern SECRET_PARAMETER =
            Pattern.compile("(?i)(?<!\\(using )\\b([\\w.-]*?(?:password|passwd|pwd|secret))"
                    + "([\"']?\\s*[=:]\\s*)"
                    + "(?:([\"'])(?:\\\\.|\\3\\3|(?!\\3).)*+\\3?|[^\\s&;,)'\"]+)");
    /**
     * The user info of a URL with a password: from {@code //} to the last {@code @} of the same word when a {@code :}
     * stands between them, so that a password holding {@code @}, {@code /}, {@code ?} or {@code #} is hidden whole.
     * That also hides the host of a URL whose query holds an {@code @} after a port ({@code
     * //host:5432/db?user=admin@server}): a text cannot tell the two apart, and a hidden host is the safe mistake.
     */
    private static final Pattern URL_USER_INFO_WITH_PASSWORD = Pattern.compile("//\\S*:\\S*@");
    /**
     * The user info of a URL without a password ({@code //user@host}): up to the {@code @} before the authority ends
     * ({@code /}, {@code ?}, {@code #} or a space), so that an {@code @} in the path or the query leaves the host
     * readable.
     */
    private static final Pattern URL_USER_INFO = Pattern.compile("//[^/?#\\s]*@");
    /**
     * User info without the {@code //} before it, as drivers echo parts of a URL that they could not parse: pgjdbc's
     * {@code UnknownHostException: bob:s3cret@db} for {@code jdbc:postgresql://bob:s3cret@db:5432/app}, MariaDB's
     * {@code Incorrect port value : s3cret@db} for {@code jdbc:mariadb://bob:s3cret@db/app}. A word (from a space,
     * quote, bracket, comma or semicolon on) without a {@code /}, up to its last {@code @} before a host. A text
     * cannot tell a password there from anything else before an {@code @}: an e-mail address or a Java object's name
     * ({@code PgConnection@1b2c3d}) loses that part too, the safe mistake. MySQL's {@code 'root'@'localhost'} stays
     * (quotes end a word), and so do words with a {@code /}, URLs, which the patterns above cover.
     */
    private static final Pattern BARE_USER_INFO = Pattern.compile("(?<![^\\s'\"(\\[,;])[^\\s/'\"()]+@(?=[\\w\\[])");

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

    /**
     * SQL states of a statement that PostgreSQL stopped before its end, so that its auto-commit transaction committed
     * nothing: lock not available (lock_timeout), query cancelled (the watchdog), deadlock, serialization failure.
     */
    private static final Set<String> STOPPED_BEFORE_COMMIT = Set.of("55P03", "57014", "40P01", "40001");

    /**
     * SQL states of a transaction that the server rolled back whole to break a deadlock: PostgreSQL's deadlock (40P01),
     * and the 40001 that MariaDB and MySQL answer for theirs (InnoDB rolls the victim's transaction back).
     */
    private static final Set<String> DEADLOCK_DETECTED = Set.of("40P01", "40001");

    /**
     * Whether {@code failure} is known to have committed nothing: a driver exception in its causes whose SQL state
     * says the statement was stopped. A lost connection, say, leaves it unknown, as does a driver exception without a
     * state.
     */
    static boolean committedNothing(RuntimeException failure) {
        return causeHasState(failure, STOPPED_BEFORE_COMMIT);
    }

    /**
     * Whether {@code failure} has a driver exception among its causes that says the database rolled its transaction back
     * to break a deadlock.
     */
    static boolean deadlocked(RuntimeException failure) {
        return causeHasState(failure, DEADLOCK_DETECTED);
    }

    /** Whether {@code failure} or one of its causes is a driver exception whose SQL state is one of {@code states}. */
    private static boolean causeHasState(Throwable failure, Set<String> states) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof SQLException sql && hasState(sql, states)) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code e}'s SQL state is one of {@code states}; false when it has none. */
    static boolean hasState(SQLException e, Set<String> states) {
        // Set.of(...).contains(null) throws: a driver exception may have no state (HikariCP's often have none).
        return e.getSQLState() != null && states.contains(e.getSQLState());
    }

    /** {@code text} with passwords and URL user info replaced by {@code ***}. */
    static String redact(String text) {
        String out = SECRET_PARAMETER.matcher(text).replaceAll(m -> {
            String quote = m.group(3) == null ? "" : m.group(3);
            return Matcher.quoteReplacement(m.group(1) + m.group(2) + quote + "***" + quote);
        });
        out = URL_USER_INFO_WITH_PASSWORD.matcher(out).replaceAll("//***@");
        out = URL_USER_INFO.matcher(out).replaceAll("//***@");
        return BARE_USER_INFO.matcher(out).replaceAll("***@");
    }

    /**
     * The cause itself when its message, its causes', its suppressed exceptions' and (for an {@link SQLException}) its
     * next exceptions' hold nothing to redact; otherwise a copy with the redacted messages and the original stack
     * traces, so a logged stack trace never shows a secret either. At most {@link #MAX_CAUSES} deep: what lies beyond
     * is dropped.
     */
    private static Throwable scrub(Throwable t, int depth) {
        if (t == null || depth >= MAX_CAUSES) {
            return null;
        }
        Throwable cause = t.getCause() == t ? null : t.getCause();
        Throwable scrubbedCause = scrub(cause, depth + 1);
        // A driver chains the errors of a batch, one per statement, as next exceptions rather than causes.
        SQLException next = t instanceof SQLException sql ? sql.getNextException() : null;
        Throwable scrubbedNext = next == null || next == t ? null : scrub(next, depth + 1);
        Throwable[] suppressed = t.getSuppressed();
        Throwable[] scrubbedSuppressed = new Throwable[suppressed.length];
        boolean same = scrubbedCause == cause && scrubbedNext == next;
        for (int i = 0; i < suppressed.length; i++) {
            scrubbedSuppressed[i] = scrub(suppressed[i], depth + 1);
            same &= scrubbedSuppressed[i] == suppressed[i];
        }
        String message = t.getMessage();
        String redacted = message == null ? null : redact(message);
        if (same && (message == null || message.equals(redacted))) {
            return t;
        }
        Throwable copy = t instanceof SQLException sql
                ? new SQLException(t.getClass().getName() + ": " + redacted, sql.getSQLState(), sql.getErrorCode())
                : new RuntimeException(t.getClass().getName() + ": " + redacted);
        copy.setStackTrace(t.getStackTrace());
        if (scrubbedCause != null) {
            copy.initCause(scrubbedCause);
        }
        if (copy instanceof SQLException sqlCopy && scrubbedNext instanceof SQLException scrubbedSql) {
            sqlCopy.setNextException(scrubbedSql);
        }
        for (Throwable s : scrubbedSuppressed) {
            if (s != null) {
                copy.addSuppressed(s);
            }
        }
        return copy;
    }
}

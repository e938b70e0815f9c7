package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.SQLException;
import org.junit.jupiter.api.Test;

/** Redaction of passwords and URL credentials in driver messages. */
class StorageFailuresTest {
    @Test
    void committedNothing_onlyForStatementsStoppedBeforeTheirCommit() {
        for (String stopped : new String[] {"55P03", "57014", "40P01", "40001"}) {
            assertThat(StorageFailures.committedNothing(
                            StorageFailures.of(JdbcDialect.POSTGRESQL, "evaluate", new SQLException("x", stopped))))
                    .as(stopped)
                    .isTrue();
        }
        // A connection lost on the way back: the statement may have committed.
        assertThat(StorageFailures.committedNothing(
                        StorageFailures.of(JdbcDialect.POSTGRESQL, "evaluate", new SQLException("io", "08006"))))
                .isFalse();
        assertThat(StorageFailures.committedNothing(new IllegalStateException("no driver exception")))
                .isFalse();
        // Found through wrapping causes too.
        assertThat(StorageFailures.committedNothing(
                        new IllegalStateException(new RuntimeException(new SQLException("x", "57014")))))
                .isTrue();
    }

    @Test
    void committedNothing_driverExceptionWithoutSqlState_isUnknownNotAFailure() {
        // HikariCP's "Interrupted during connection acquisition", the watchdog's refusal after close(): no state.
        assertThat(StorageFailures.committedNothing(
                        StorageFailures.of(JdbcDialect.POSTGRESQL, "evaluate", new SQLException("no state"))))
                .isFalse();
        // A stopped statement further down the causes still counts.
        assertThat(StorageFailures.committedNothing(
                        new IllegalStateException(new SQLException("no state", null, new SQLException("x", "55P03")))))
                .isTrue();
    }

    @Test
    void redact_unquotedValues_hidesThem() {
        assertThat(StorageFailures.redact("url?user=bob&password=s3cret&ssl=true"))
                .isEqualTo("url?user=bob&password=***&ssl=true");
        assertThat(StorageFailures.redact("pwd: s3cret; next")).isEqualTo("pwd: ***; next");
    }

    @Test
    void redact_singleQuotedValue_hidesAllOfIt() {
        assertThat(StorageFailures.redact("options password='s3cret' sslmode=require"))
                .isEqualTo("options password='***' sslmode=require");
        assertThat(StorageFailures.redact("password = 's3 cret, with spaces' end"))
                .isEqualTo("password = '***' end");
        assertThat(StorageFailures.redact("password='it''s' end")).isEqualTo("password='***' end");
    }

    @Test
    void redact_doubleQuotedValue_hidesAllOfIt() {
        assertThat(StorageFailures.redact("password=\"s3cret\" user=\"bob\""))
                .isEqualTo("password=\"***\" user=\"bob\"");
        assertThat(StorageFailures.redact("password=\"s3\\\"cret\" end")).isEqualTo("password=\"***\" end");
    }

    @Test
    void redact_jsonStyle_hidesTheValueOnly() {
        assertThat(StorageFailures.redact("{\"user\":\"bob\",\"password\":\"s3cret\",\"ssl\":true}"))
                .isEqualTo("{\"user\":\"bob\",\"password\":\"***\",\"ssl\":true}");
        assertThat(StorageFailures.redact("{'password': 's3cret'}")).isEqualTo("{'password': '***'}");
        assertThat(StorageFailures.redact("{\"sslPassword\" : \"s3cret\"}")).isEqualTo("{\"sslPassword\" : \"***\"}");
    }

    @Test
    void redact_prefixedKeys_hideTheirValues() {
        assertThat(StorageFailures.redact("javax.net.ssl.trustStorePassword=s3cret"))
                .isEqualTo("javax.net.ssl.trustStorePassword=***");
        assertThat(StorageFailures.redact("client_secret=s3cret")).isEqualTo("client_secret=***");
    }

    @Test
    void redact_unterminatedQuote_hidesTheRest() {
        assertThat(StorageFailures.redact("password='s3cret")).isEqualTo("password='***'");
    }

    @Test
    void redact_urlUserInfo_hidesUpToTheLastAtBeforeTheHost() {
        assertThat(StorageFailures.redact("jdbc:postgresql://u:p@ss@host:5432/test"))
                .isEqualTo("jdbc:postgresql://***@host:5432/test");
        assertThat(StorageFailures.redact("jdbc:mariadb://bob:s3cret@db/test refused"))
                .isEqualTo("jdbc:mariadb://***@db/test refused");
        assertThat(StorageFailures.redact("from //a:b@h1/x and //c:d@e@h2/y"))
                .isEqualTo("from //***@h1/x and //***@h2/y");
    }

    @Test
    void redact_urlPasswordHoldingSlashQuestionMarkOrHash_hidesItWhole() {
        assertThat(StorageFailures.redact("jdbc:mysql://root:pa/ss@db:3306/test refused"))
                .isEqualTo("jdbc:mysql://***@db:3306/test refused");
        assertThat(StorageFailures.redact("jdbc:mysql://root:pa?ss@db:3306/test refused"))
                .isEqualTo("jdbc:mysql://***@db:3306/test refused");
        assertThat(StorageFailures.redact("jdbc:mysql://root:pa#ss@db:3306/test refused"))
                .isEqualTo("jdbc:mysql://***@db:3306/test refused");
        // Ambiguous with a password holding '/': the host goes too, the safe mistake.
        assertThat(StorageFailures.redact("jdbc:postgresql://db.example.com:5432/app?user=admin@db"))
                .isEqualTo("jdbc:postgresql://***@db");
        // A user without a password: an '@' in the query leaves the host readable.
        assertThat(StorageFailures.redact("jdbc:postgresql://db.example.com/app?user=admin@db"))
                .isEqualTo("jdbc:postgresql://db.example.com/app?user=admin@db");
    }

    /**
     * Drivers that cannot parse a URL with user info echo part of it without its {@code //}: pgjdbc looks the user
     * info up as part of the host, MariaDB's driver reads the password as the port. Neither must show the password.
     */
    @Test
    void redact_userInfoEchoedWithoutItsUrl_hidesIt() {
        assertThat(StorageFailures.redact("bob:s3cret@127.0.0.1: invalid IPv6 address"))
                .isEqualTo("***@127.0.0.1: invalid IPv6 address");
        assertThat(StorageFailures.redact("Incorrect port value : s3cret@db"))
                .isEqualTo("Incorrect port value : ***@db");
        assertThat(StorageFailures.redact("host (bob:p@ss@[::1]) unknown")).isEqualTo("host (***@[::1]) unknown");
        // MySQL's account names, and URLs (the patterns for URLs decide there), stay as they were.
        assertThat(StorageFailures.redact("Access denied for user 'root'@'localhost'"))
                .isEqualTo("Access denied for user 'root'@'localhost'");
        assertThat(StorageFailures.redact("jdbc:postgresql://db.example.com/app?user=admin@db"))
                .isEqualTo("jdbc:postgresql://db.example.com/app?user=admin@db");
    }

    @Test
    void redact_usingPasswordOutsideMySqlsPhrase_hidesTheValue() {
        assertThat(StorageFailures.redact("Using password=hunter2")).isEqualTo("Using password=***");
        assertThat(StorageFailures.redact("using password: hunter2")).isEqualTo("using password: ***");
    }

    @Test
    void redact_ordinaryMessages_stayAsTheyWere() {
        for (String message : new String[] {
            "FATAL: password authentication failed for user \"bob\"",
            "Connection to 127.0.0.1:5432 refused. Check that the hostname and port are correct",
            "jdbc:postgresql://127.0.0.1:5432/test?ssl=false",
            "Duplicate entry 'x' for key 'PRIMARY'",
            "Access denied for user 'root'@'localhost' (using password: YES)",
            "ERROR: relation \"guard_state\" does not exist",
        }) {
            assertThat(StorageFailures.redact(message)).isEqualTo(message);
        }
    }

    @Test
    void of_passwordsInNextAndSuppressedExceptions_areRedactedToo() {
        SQLException cause = new SQLException("batch entry 0 failed", "22003");
        cause.setNextException(new SQLException("connection to //bob:s3cret@db refused", "08001"));
        cause.addSuppressed(new IllegalStateException("retry with password=s3cret failed"));

        Throwable copy =
                StorageFailures.of(JdbcDialect.POSTGRESQL, "evaluate", cause).getCause();

        SQLException next = ((SQLException) copy).getNextException();
        assertThat((Throwable) next).hasMessage("java.sql.SQLException: connection to //***@db refused");
        assertThat(next.getSQLState()).isEqualTo("08001");
        assertThat(copy.getSuppressed()).singleElement().satisfies(s -> assertThat(s)
                .hasMessage("java.lang.IllegalStateException: retry with password=*** failed"));
    }

    @Test
    void of_quotedPasswordInTheCause_isRedactedThroughout() {
        SQLException cause =
                new SQLException("login failed", "28P01", new IllegalStateException("options password=\"s3cret\""));
        Throwable copy =
                StorageFailures.of(JdbcDialect.POSTGRESQL, "acquire", cause).getCause();
        assertThat(copy.getCause()).hasMessage("java.lang.IllegalStateException: options password=\"***\"");
    }
}

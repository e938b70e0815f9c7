package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.Proxy;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The watchdog against statements that run until cancelled or answer at once; no database. */
class StatementWatchdogTest {
    /**
     * A statement whose query blocks until cancelled (then fails as pgjdbc does, SQL state 57014), or answers null at
     * once when {@code blocks} is false; it counts its cancels.
     */
    private static final class FakeStatement {
        final AtomicInteger cancels = new AtomicInteger();
        final CountDownLatch cancelled;
        final PreparedStatement statement;

        FakeStatement(boolean blocks) {
            this(blocks, new CountDownLatch(0), 1);
        }

        /**
         * A statement whose query first waits for {@code gate}, then runs as {@link #FakeStatement(boolean)}'s, ending
         * at its {@code cancelsToEnd}th cancel (the earlier ones lost, as a cancel before the driver starts the query
         * is).
         */
        FakeStatement(boolean blocks, CountDownLatch gate, int cancelsToEnd) {
            cancelled = new CountDownLatch(cancelsToEnd);
            statement = (PreparedStatement) Proxy.newProxyInstance(
                    StatementWatchdogTest.class.getClassLoader(),
                    new Class<?>[] {PreparedStatement.class},
                    (proxy, method, args) -> switch (method.getName()) {
                        case "cancel" -> {
                            cancels.incrementAndGet();
                            cancelled.countDown();
                            yield null;
                        }
                        case "executeQuery" -> {
                            gate.countDown();
                            if (!gate.await(30, TimeUnit.SECONDS)) {
                                throw new AssertionError("the other statements never started");
                            }
                            if (!blocks) {
                                yield null;
                            }
                            if (!cancelled.await(30, TimeUnit.SECONDS)) {
                                throw new AssertionError("the watchdog never cancelled the statement");
                            }
                            throw new SQLException("canceling statement due to user request", "57014");
                        }
                        default -> throw new UnsupportedOperationException(method.getName());
                    });
        }
    }

    @Test
    void executeQuery_withAnEarlierDeadline_isCancelledAtItEvenWhileTheWatchdogSleepsForItsTimeout()
            throws SQLException {
        // An hour's timeout: the watchdog sleeps for an hour unless an earlier deadline wakes it.
        try (StatementWatchdog watchdog = new StatementWatchdog(Duration.ofHours(1), "test-watchdog")) {
            FakeStatement quick = new FakeStatement(false);
            assertThat(watchdog.executeQuery(quick.statement)).isNull();
            FakeStatement slow = new FakeStatement(true);
            assertThatThrownBy(() -> watchdog.executeQuery(slow.statement, System.nanoTime() + 1_000_000))
                    .isInstanceOf(SQLException.class)
                    .hasMessage("canceling statement due to user request");
            assertThat(slow.cancels).hasValue(1);
        }
    }

    /**
     * A statement whose deadline has passed before it comes (its call's earliest decision ran out while the thread
     * waited for a connection) is refused unsent, as a cancelled one fails: otherwise the watchdog's cancel races the
     * start of its execution, and a cancel that comes first is lost, leaving it to run until the next cancel a second
     * (or a timeout) later.
     */
    @Test
    void executeQuery_whoseDeadlineHasPassedAlready_isNotSent_andFailsAsACancelledOne() throws SQLException {
        try (StatementWatchdog watchdog = new StatementWatchdog(Duration.ofHours(1), "test-watchdog")) {
            AtomicInteger executions = new AtomicInteger();
            PreparedStatement statement = (PreparedStatement) Proxy.newProxyInstance(
                    StatementWatchdogTest.class.getClassLoader(),
                    new Class<?>[] {PreparedStatement.class},
                    (proxy, method, args) -> {
                        if (method.getName().equals("executeQuery")) {
                            executions.incrementAndGet();
                        }
                        return null;
                    });

            assertThatThrownBy(() -> watchdog.executeQuery(statement, System.nanoTime() - 1))
                    .isInstanceOfSatisfying(
                            SQLException.class, e -> assertThat(e.getSQLState()).isEqualTo("57014"))
                    .hasMessage("the statement's deadline passed before it was sent");
            assertThat(executions).hasValue(0);
            // Nor is it left watched: a statement due later runs as usual.
            assertThat(watchdog.executeQuery(statement)).isNull();
            assertThat(executions).hasValue(1);
        }
    }

    @Test
    void executeQuery_runningPastTheTimeout_isCancelledOnce() {
        try (StatementWatchdog watchdog = new StatementWatchdog(Duration.ofMillis(1), "test-watchdog")) {
            FakeStatement slow = new FakeStatement(true);
            assertThatThrownBy(() -> watchdog.executeQuery(slow.statement))
                    .isInstanceOf(SQLException.class)
                    .hasMessage("canceling statement due to user request");
            assertThat(slow.cancels).hasValue(1);
        }
    }

    @Test
    void executeQuery_whoseFirstCancelIsLost_isCancelledAgainUntilItEnds() {
        try (StatementWatchdog watchdog = new StatementWatchdog(Duration.ofMillis(1), "test-watchdog", 4, 1_000_000)) {
            FakeStatement slow = new FakeStatement(true, new CountDownLatch(0), 2);
            assertThatThrownBy(() -> watchdog.executeQuery(slow.statement))
                    .isInstanceOf(SQLException.class)
                    .hasMessage("canceling statement due to user request");
            assertThat(slow.cancels.get()).isGreaterThanOrEqualTo(2);
        }
    }

    @Test
    void executeQuery_answeredWithinTheTimeout_isNotCancelledAfterwards() throws SQLException {
        FakeStatement fast = new FakeStatement(false);
        // Once outside the watchdog, so that the watched call is quick: well within its 100 ms.
        assertThat(fast.statement.executeQuery()).isNull();
        try (StatementWatchdog watchdog = new StatementWatchdog(Duration.ofMillis(100), "test-watchdog")) {
            ResultSet answer = watchdog.executeQuery(fast.statement);
            assertThat(answer).isNull();
            // The slow statement's cancel comes from a pass of the thread after the fast one's deadline.
            FakeStatement slow = new FakeStatement(true);
            assertThatThrownBy(() -> watchdog.executeQuery(slow.statement)).isInstanceOf(SQLException.class);
            assertThat(slow.cancels).hasValue(1);
            assertThat(fast.cancels).hasValue(0);
        }
    }

    @Test
    void executeQuery_moreStatementsAtOnceThanSlots_cancelsEachOnce() throws Exception {
        ExecutorService callers = Executors.newFixedThreadPool(3);
        try (StatementWatchdog watchdog =
                new StatementWatchdog(Duration.ofMillis(1), "test-watchdog", 1, StatementWatchdog.RECANCEL_NANOS)) {
            // All three are executing at once: one holds the only slot, two go to the overflow set.
            CountDownLatch allStarted = new CountDownLatch(3);
            List<FakeStatement> statements = new ArrayList<>();
            List<Future<?>> calls = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                FakeStatement slow = new FakeStatement(true, allStarted, 1);
                statements.add(slow);
                calls.add(callers.submit(() -> watchdog.executeQuery(slow.statement)));
            }
            for (Future<?> call : calls) {
                assertThatThrownBy(() -> call.get(30, TimeUnit.SECONDS))
                        .hasCauseInstanceOf(SQLException.class)
                        .hasMessageContaining("canceling statement due to user request");
            }
            assertThat(statements).allSatisfy(s -> assertThat(s.cancels).hasValue(1));
        } finally {
            callers.shutdownNow();
        }
    }

    @Test
    void close_whileAStatementRuns_stillCancelsItAtItsDeadline_thenEndsTheThreadAndRefusesMore() throws Exception {
        StatementWatchdog watchdog = new StatementWatchdog(Duration.ofHours(1), "test-watchdog");
        CountDownLatch gate = new CountDownLatch(2);
        FakeStatement slow = new FakeStatement(true, gate, 1);
        ExecutorService caller = Executors.newSingleThreadExecutor();
        try {
            Future<Throwable> running = caller.submit(() -> {
                try {
                    // Due well after the close below.
                    watchdog.executeQuery(slow.statement, System.nanoTime() + 500_000_000);
                    return null;
                } catch (SQLException e) {
                    return e;
                }
            });
            // The statement is watched and executing: close now, then let it run on.
            while (gate.getCount() > 1) {
                Thread.onSpinWait();
            }
            watchdog.close();
            gate.countDown();

            assertThat(running.get(30, TimeUnit.SECONDS)).hasMessage("canceling statement due to user request");
            assertThat(slow.cancels).hasValue(1);
            watchdog.thread().join(TimeUnit.SECONDS.toMillis(30));
            assertThat(watchdog.thread().isAlive()).isFalse();
            FakeStatement later = new FakeStatement(false);
            assertThatThrownBy(() -> watchdog.executeQuery(later.statement))
                    .isInstanceOf(SQLException.class)
                    .hasMessage("the storage is closed: its statements are no longer watched");
        } finally {
            caller.shutdownNow();
        }
    }

    @Test
    void close_endsTheThread() throws InterruptedException {
        StatementWatchdog watchdog = new StatementWatchdog(Duration.ofHours(1), "test-watchdog");
        Thread thread = watchdog.thread();
        assertThat(thread.isDaemon()).isTrue();
        assertThat(thread.getName()).isEqualTo("test-watchdog");

        watchdog.close();
        watchdog.close();
        thread.join(TimeUnit.SECONDS.toMillis(30));
        assertThat(thread.isAlive()).isFalse();
    }
}

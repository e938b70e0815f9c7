package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.LimitSpec;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GuardFailureTest {
    /** A storage that can be switched off: every call then throws, as a dead Redis would. */
    static final class SwitchableStorage implements Storage {
        final ReferenceStorage delegate = ReferenceStorage.create();
        final AtomicInteger calls = new AtomicInteger();
        volatile boolean down;
        /** Only acquire fails (the reject notice's call). */
        volatile boolean failAcquire;
        /** evaluateAsync throws instead of returning a stage. */
        volatile boolean throwOnAsync;
        /** evaluateAsync answers one outcome more than the batch has steps. */
        volatile boolean wrongSizeAsync;
        /** Every synchronous call fails: only the asynchronous one works. */
        volatile boolean failSync;
        /** evaluateAsync answers null for the reject notice's batch. */
        volatile boolean nullForNotice;
        /** evaluateAsync returns null instead of a stage. */
        volatile boolean noStage;
        /**
         * Failures are an {@link IOException} thrown undeclared, evaluateAsync's too (before it answers a stage), as
         * a storage written in Kotlin may let its client's exception through.
         */
        volatile boolean undeclaredChecked;
        /** Failures are a bare {@link Throwable}, neither an exception nor an error, as Kotlin code may throw. */
        volatile boolean bareThrowable;
        /** Failures are an {@link InterruptedException} thrown undeclared: a storage of one's own interrupted. */
        volatile boolean interrupted;

        private void call(String operation) {
            calls.incrementAndGet();
            if (down || failSync) {
                throw failure(operation);
            }
        }

        private RuntimeException failure(String operation) {
            if (undeclaredChecked) {
                throw sneaky(new IOException(operation + ": connection refused"));
            }
            if (bareThrowable) {
                throw sneaky(new Throwable(operation + ": connection refused"));
            }
            if (interrupted) {
                throw sneaky(new InterruptedException(operation + ": interrupted"));
            }
            return new GuardStorageException("test", operation, "connection refused", null);
        }

        @Override
        public BatchResult evaluate(Batch batch, long nowMicros) {
            call("evaluate");
            return delegate.evaluate(batch, nowMicros);
        }

        @Override
        public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
            calls.incrementAndGet();
            if (throwOnAsync) {
                throw new IllegalStateException("not a stage");
            }
            if (down && (undeclaredChecked || bareThrowable || interrupted)) {
                throw failure("evaluate");
            }
            if (noStage) {
                return null;
            }
            if (nullForNotice && batch.step(0).key().scope().endsWith(Guard.NOTICE_SCOPE)) {
                return CompletableFuture.completedFuture(null);
            }
            if (wrongSizeAsync) {
                long[] outcomes = new long[batch.size() + 1];
                return CompletableFuture.completedFuture(BatchResult.of(outcomes));
            }
            if (down) {
                return CompletableFuture.failedFuture(
                        new GuardStorageException("test", "evaluate", "connection refused", null));
            }
            return CompletableFuture.completedFuture(delegate.evaluate(batch, nowMicros));
        }

        @Override
        public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
            call("acquire");
            if (failAcquire) {
                throw failure("acquire");
            }
            return delegate.acquire(key, spec, permits, nowMicros);
        }

        @Override
        public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
            call("raiseGate");
            return delegate.raiseGate(key, untilMicros, nowMicros);
        }

        @Override
        public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
            call("addMember");
            delegate.addMember(key, expiresAtMicros, nowMicros);
        }

        @Override
        public boolean removeMember(StateKey key) {
            call("removeMember");
            return delegate.removeMember(key);
        }

        @Override
        public boolean isMember(StateKey key, long nowMicros) {
            call("isMember");
            return delegate.isMember(key, nowMicros);
        }

        @Override
        public Optional<VersionedRecord> getRecord(StateKey key) {
            call("getRecord");
            return delegate.getRecord(key);
        }

        @Override
        public long putRecord(StateKey key, byte[] value, long expectedVersion) {
            call("putRecord");
            return delegate.putRecord(key, value, expectedVersion);
        }

        @Override
        public long forget(String subject) {
            call("forget");
            return delegate.forget(subject);
        }

        @Override
        public StorageHealth health() {
            return down ? StorageHealth.down(Duration.ZERO, "switched off") : delegate.health();
        }

        @Override
        public void close() {}
    }

    /** Throws {@code e} undeclared. */
    @SuppressWarnings("unchecked")
    static <E extends Throwable> RuntimeException sneaky(Throwable e) throws E {
        throw (E) e;
    }

    record Msg(long user, String text) {}

    final ManualTicker ticker = ManualTicker.create();
    final SwitchableStorage storage = new SwitchableStorage();

    @Test
    void fallback_thatIsTheGuardsOwnStorage_isRefusedAtBuild() {
        assertThatThrownBy(() -> builder()
                        .onStorageFailure(FailurePolicy.fallbackTo(storage))
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageStartingWith("the fallback storage must not be the guard's own storage");
    }

    Guard.Builder<Msg> builder() {
        return Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .breaker(3, Duration.ofSeconds(10));
    }

    @Test
    void failOpen_allowsAndSaysTheStorageIsUnavailable() {
        Guard<Msg> guard = builder().build();
        storage.down = true;

        Decision decision = guard.check(new Msg(1, "a"));

        assertThat(decision.allowed()).isTrue();
        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        assertThat(decision.filter()).isEqualTo("storage");
        assertThat(decision.degraded()).isTrue();
        assertThat(decision.remaining()).as("no quota applied").isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void failClosed_rejects() {
        Guard<Msg> guard =
                builder().onStorageFailure(FailurePolicy.failClosed()).build();
        storage.down = true;

        Decision decision = guard.check(new Msg(1, "a"));

        assertThat(decision.allowed()).isFalse();
        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        assertThat(decision.degraded()).isTrue();
    }

    @Test
    void failClosed_whileTheBreakerIsOpen_retryAfterIsWhatIsLeftOfItsPause() {
        // breaker(3, 10 s): the third failure in a row opens it until 10 s after that failure's decision began.
        Guard<Msg> guard =
                builder().onStorageFailure(FailurePolicy.failClosed()).build();
        storage.down = true;
        guard.check(new Msg(1, "a"));
        guard.check(new Msg(2, "a"));
        assertThat(guard.check(new Msg(3, "a")).retryAfter()).isEqualTo(Duration.ofSeconds(10));

        // Open: what is left of the pause, not the whole pause again.
        ticker.advanceMicros(4_000_001);
        Decision open = guard.check(new Msg(4, "a"));
        assertThat(open.rejected()).isTrue();
        assertThat(open.retryAfter()).isEqualTo(Duration.ofSeconds(6).minusNanos(1_000));
        assertThat(open.retryAfterSeconds()).isEqualTo(6);
        assertThat(guard.checkAsync(new Msg(5, "a"))
                        .toCompletableFuture()
                        .join()
                        .retryAfter())
                .isEqualTo(Duration.ofSeconds(6).minusNanos(1_000));
        ticker.advanceMicros(5_999_998);
        assertThat(guard.check(new Msg(6, "a")).retryAfter()).isEqualTo(Duration.ofNanos(1_000));
        assertThat(storage.calls).hasValue(3);

        // Due: the probe goes out, fails, and opens the breaker for another whole pause from then.
        ticker.advanceMicros(1);
        assertThat(guard.check(new Msg(7, "a")).retryAfter()).isEqualTo(Duration.ofSeconds(10));
        assertThat(storage.calls).hasValue(4);
    }

    @Test
    void failClosed_whileTheBreakerIsClosed_retryAfterIsZero_theNextMessageTriesTheStorage() {
        Guard<Msg> guard =
                builder().onStorageFailure(FailurePolicy.failClosed()).build();
        storage.down = true;

        Decision first = guard.check(new Msg(1, "a"));
        Decision second =
                guard.checkAsync(new Msg(2, "a")).toCompletableFuture().join();

        assertThat(first.rejected()).isTrue();
        assertThat(first.retryAfter()).isEqualTo(Duration.ZERO);
        assertThat(first.retryable()).isTrue();
        assertThat(second.retryAfter()).isEqualTo(Duration.ZERO);
        assertThat(storage.calls).hasValue(2);
    }

    @Test
    void failClosed_aBreakerOpenForEver_rejectsWithNever() {
        Guard<Msg> guard = builder()
                .breaker(1, Duration.ofSeconds(Long.MAX_VALUE))
                .onStorageFailure(FailurePolicy.failClosed())
                .build();
        storage.down = true;

        Decision first = guard.check(new Msg(1, "a"));
        ticker.advance(Duration.ofDays(365));
        Decision later = guard.check(new Msg(1, "b"));

        assertThat(first.retryAfter()).isEqualTo(Decision.NEVER);
        assertThat(later.retryAfter()).isEqualTo(Decision.NEVER);
        assertThat(later.retryable()).isFalse();
        assertThat(storage.calls).hasValue(1);
    }

    @Test
    void fallback_keepsLimitsLocallyWhileTheStorageIsDown() {
        Guard<Msg> guard = builder()
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .build();
        storage.down = true;

        Decision first = guard.check(new Msg(1, "a"));
        Decision second = guard.check(new Msg(1, "b"));

        assertThat(first.allowed()).isTrue();
        assertThat(first.degraded()).isTrue();
        assertThat(second.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(second.degraded()).isTrue();
    }

    @Test
    void breaker_stopsCallingADeadStorageAndProbesAfterOpenFor() {
        Guard<Msg> guard = builder().build();
        storage.down = true;

        for (int i = 0; i < 100; i++) {
            guard.check(new Msg(i, "a"));
        }
        // Three failures open the breaker; the other 97 decisions cost no storage call.
        assertThat(storage.calls).hasValue(3);

        storage.down = false;
        assertThat(guard.check(new Msg(1, "b")).degraded()).isTrue();
        assertThat(storage.calls).hasValue(3);

        ticker.advance(Duration.ofSeconds(10));
        Decision probe = guard.check(new Msg(1, "c"));
        assertThat(probe.degraded()).isFalse();
        assertThat(probe.allowed()).isTrue();
        assertThat(guard.check(new Msg(1, "d")).reason()).isEqualTo(Reason.THROTTLED);
        assertThat(storage.calls).hasValue(5);
    }

    @Test
    void breaker_failedProbeOpensItAgain() {
        Guard<Msg> guard = builder().build();
        storage.down = true;
        for (int i = 0; i < 3; i++) {
            guard.check(new Msg(i, "a"));
        }
        ticker.advance(Duration.ofSeconds(10));

        guard.check(new Msg(1, "probe"));
        guard.check(new Msg(1, "refused"));

        assertThat(storage.calls).hasValue(4);
    }

    @Test
    void checkAsync_storageDown_completesWithThePolicyNotAnException() {
        Guard<Msg> guard =
                builder().onStorageFailure(FailurePolicy.failClosed()).build();
        storage.down = true;

        Decision decision =
                guard.checkAsync(new Msg(1, "a")).toCompletableFuture().join();

        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        assertThat(decision.allowed()).isFalse();
    }

    @Test
    void rejectNotice_storageDown_isSkippedWithoutThrowing() {
        AtomicInteger notices = new AtomicInteger();
        Guard<Msg> guard = builder()
                .onStorageFailure(FailurePolicy.failClosed())
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        storage.down = true;

        guard.check(new Msg(1, "a"));

        assertThat(notices).hasValue(0);
    }

    @Test
    void rejectNotice_goesThroughTheBreaker_soAFloodAgainstADeadStorageCostsNoCallPerRejection() {
        AtomicInteger notices = new AtomicInteger();
        Guard<Msg> guard = builder()
                .breaker(1, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        storage.down = true;

        for (int i = 0; i < 5; i++) {
            guard.check(new Msg(1, "m" + i));
        }

        // The first decision fails and opens the breaker; the fallback rejects the next four (throttled), and
        // their notices do not call the dead storage either: the fallback keeps their cooldown, one per window.
        assertThat(storage.calls).hasValue(1);
        assertThat(notices).hasValue(1);
    }

    @Test
    void rejectNotice_ofAFallbackDecision_whileTheBreakerIsClosed_goesToTheFallbackOnly() throws Exception {
        AtomicInteger notices = new AtomicInteger();
        Guard<Msg> guard = builder()
                .breaker(100, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        storage.down = true;

        guard.check(new Msg(1, "a"));
        Decision throttled = guard.check(new Msg(1, "b"));
        Decision again = guard.checkAsync(new Msg(1, "c")).toCompletableFuture().get();

        assertThat(throttled.degraded()).isTrue();
        assertThat(throttled.rejected()).isTrue();
        assertThat(again.rejected()).isTrue();
        // One call per decision to the failing storage, none for the notices; one notice in the window.
        assertThat(storage.calls).hasValue(3);
        assertThat(notices).hasValue(1);
    }

    @Test
    void rejectNotice_failures_countForTheBreaker() {
        AtomicInteger notices = new AtomicInteger();
        // Two filters: the decision is one batch (evaluate), and the notice is the only single-key call (acquire).
        Guard<Msg> guard = builder()
                .throttle("per-user-hour", KeyBy.USER, 10, Duration.ofHours(1))
                .breaker(1, Duration.ofMinutes(5))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        guard.check(new Msg(1, "a"));
        storage.failAcquire = true;

        Decision throttled = guard.check(new Msg(1, "b"));
        int callsAfterTheNotice = storage.calls.get();
        Decision next = guard.check(new Msg(1, "c"));

        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(notices).hasValue(0);
        // The notice's failed call opened the breaker: the next decision does not call the storage.
        assertThat(next.degraded()).isTrue();
        assertThat(storage.calls).hasValue(callsAfterTheNotice);
    }

    @Test
    void rejectNotice_whoseOwnStorageCallFails_goesToTheFallback_asRejectNoticeSays() throws Exception {
        AtomicInteger notices = new AtomicInteger();
        // Two filters: the decision is one batch (evaluate), and the notice is the only single-key call (acquire).
        Guard<Msg> guard = builder()
                .throttle("per-user-hour", KeyBy.USER, 10, Duration.ofHours(1))
                .breaker(100, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        guard.check(new Msg(1, "a"));
        guard.check(new Msg(2, "a"));
        storage.failAcquire = true;

        // The storage decides the rejection, then fails on the notice's call: the fallback keeps its cooldown.
        Decision throttled = guard.check(new Msg(1, "b"));
        guard.check(new Msg(1, "c"));
        storage.nullForNotice = true; // checkAsync's notice is an asynchronous call: it answers nothing that fits
        Decision async = guard.checkAsync(new Msg(2, "b")).toCompletableFuture().get();

        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(throttled.degraded()).isFalse();
        assertThat(async.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(notices).as("one for user 1 in the window, one for user 2").hasValue(2);
    }

    final List<Duration> noticedAt = new ArrayList<>();

    /**
     * A guard whose reject notices are recorded by when they came ({@link #noticedAt}), with a fallback, and two
     * filters: the decision is one batch (evaluate), and the notice is the only single-key call (acquire).
     */
    Guard<Msg> noticingWithAFallback() {
        Instant start = ticker.now();
        return builder()
                .throttle("per-user-hour", KeyBy.USER, 10, Duration.ofHours(1))
                .breaker(100, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> noticedAt.add(Duration.between(start, ticker.now())))
                .build();
    }

    @Test
    void rejectNotice_sentOnTheFallbackWhenTheStorageFailedOnIt_isNotSentAgainInItsWindowOnceTheStorageIsBack()
            throws Exception {
        Guard<Msg> guard = noticingWithAFallback();
        guard.check(new Msg(1, "a"));

        // 0 s: the storage throttles, then fails on the notice's call: the fallback sends it and keeps its window.
        storage.failAcquire = true;
        guard.check(new Msg(1, "b"));
        storage.failAcquire = false;
        // 10 s: the storage is back, throttles, and knows of no notice in the window; nor by 20 s.
        ticker.advance(Duration.ofSeconds(10));
        guard.check(new Msg(1, "c"));
        ticker.advance(Duration.ofSeconds(10));
        guard.checkAsync(new Msg(1, "d")).toCompletableFuture().get();
        assertThat(noticedAt).containsExactly(Duration.ZERO);

        // 40 s: the storage's window, from its first notice call at 10 s, is over: the next notice goes out.
        ticker.advance(Duration.ofSeconds(20));
        guard.check(new Msg(1, "e"));
        assertThat(noticedAt).containsExactly(Duration.ZERO, Duration.ofSeconds(40));
    }

    @Test
    void rejectNotice_sentThroughTheStorage_isNotSentAgainInItsWindowOnTheFallbackWhenTheStorageFails()
            throws Exception {
        Guard<Msg> guard = noticingWithAFallback();
        guard.check(new Msg(1, "a"));
        guard.checkAsync(new Msg(1, "b")).toCompletableFuture().get(); // 0 s: throttled, notice through the storage

        // 5 s: the storage is down; the fallback's throttle passes the first message and rejects the next.
        ticker.advance(Duration.ofSeconds(5));
        storage.down = true;
        guard.check(new Msg(1, "c"));
        guard.check(new Msg(1, "d"));
        assertThat(noticedAt).containsExactly(Duration.ZERO);

        ticker.advance(Duration.ofSeconds(25)); // 30 s: the window is over
        guard.check(new Msg(1, "e"));
        assertThat(noticedAt).containsExactly(Duration.ZERO, Duration.ofSeconds(30));
    }

    @ParameterizedTest(name = "bare Throwable: {0}")
    @ValueSource(booleans = {false, true})
    void aStorageThatThrowsACheckedExceptionUndeclared_givesTheFailurePolicysDecision_andTheNoticeGoesToTheFallback(
            boolean bare) throws Exception {
        AtomicInteger notices = new AtomicInteger();
        ReferenceStorage fallback = ReferenceStorage.create();
        Guard<Msg> guard = builder()
                .throttle("per-user-hour", KeyBy.USER, 10, Duration.ofHours(1))
                .breaker(100, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(fallback))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        // A checked exception thrown undeclared, or a bare Throwable (neither an exception nor an error): what a
        // storage written in Kotlin may let through.
        storage.undeclaredChecked = !bare;
        storage.bareThrowable = bare;
        guard.check(new Msg(1, "a"));

        // The storage decides, then fails on the notice's own call: the notice goes to the fallback.
        storage.failAcquire = true;
        Decision throttled = guard.check(new Msg(1, "b"));
        // The storage is down: the fallback decides, in check and in checkAsync.
        storage.down = true;
        Decision sync = guard.check(new Msg(2, "a"));
        Decision async = guard.checkAsync(new Msg(3, "a")).toCompletableFuture().get();

        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(throttled.degraded()).isFalse();
        assertThat(notices).hasValue(1);
        assertThat(sync.allowed()).isTrue();
        assertThat(sync.degraded()).isTrue();
        assertThat(async.allowed()).isTrue();
        assertThat(async.degraded()).isTrue();
        assertThat(guard.check(new Msg(3, "b")).reason())
                .as("the fallback counted user 3's first message")
                .isEqualTo(Reason.THROTTLED);
    }

    /**
     * A storage of one's own whose blocking call was interrupted and lets the InterruptedException through undeclared:
     * the failure policy decides, as for any failure, and the thread stays interrupted (throwing cleared its status),
     * as the built-in storages leave it, so that the bot's worker loop still learns that it was asked to stop.
     */
    @Test
    void aStorageThatThrowsInterruptedExceptionUndeclared_givesThePolicysDecision_andTheThreadStaysInterrupted()
            throws Exception {
        ReferenceStorage fallback = ReferenceStorage.create();
        Guard<Msg> guard = builder()
                .throttle("per-user-hour", KeyBy.USER, 1, Duration.ofHours(1))
                .breaker(100, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(fallback))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> {})
                .build();
        storage.interrupted = true;
        guard.check(new Msg(1, "a"));

        // The storage decides, then its call for the notice is interrupted.
        storage.failAcquire = true;
        Decision throttled = guard.check(new Msg(1, "b"));
        boolean afterNotice = Thread.interrupted(); // each clears it: the other tests run on this thread
        // The storage's calls are interrupted: the fallback decides, in check and in checkAsync.
        storage.down = true;
        Decision sync = guard.check(new Msg(2, "a"));
        boolean afterSync = Thread.interrupted();
        Decision async = guard.checkAsync(new Msg(3, "a")).toCompletableFuture().get();
        boolean afterAsync = Thread.interrupted();

        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(sync.degraded()).isTrue();
        assertThat(async.degraded()).isTrue();
        assertThat(List.of(afterNotice, afterSync, afterAsync))
                .as("interrupted after the notice's call, check and checkAsync")
                .containsExactly(true, true, true);
    }

    @Test
    void checkAsync_aStorageThatThrowsInsteadOfAnsweringAStage_givesADegradedDecision() throws Exception {
        Guard<Msg> guard = builder().build();
        storage.throwOnAsync = true;

        Decision decision =
                guard.checkAsync(new Msg(1, "a")).toCompletableFuture().get();

        assertThat(decision.allowed()).isTrue();
        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        assertThat(decision.degraded()).isTrue();
    }

    @Test
    void checkAsync_anAnswerThatDoesNotFitTheBatch_isAStorageFailure() throws Exception {
        Guard<Msg> guard = builder()
                .throttle("per-user-hour", KeyBy.USER, 10, Duration.ofHours(1))
                .build();
        storage.wrongSizeAsync = true;

        Decision decision =
                guard.checkAsync(new Msg(1, "a")).toCompletableFuture().get();

        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        assertThat(decision.degraded()).isTrue();
    }

    @Test
    void checkAsync_sendsTheRejectNoticeWithoutASynchronousStorageCall() throws Exception {
        AtomicInteger notices = new AtomicInteger();
        Guard<Msg> guard = builder()
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        guard.checkAsync(new Msg(1, "a")).toCompletableFuture().get();
        // A remote storage completes stages on its client's thread, where a blocking call would stall it.
        storage.failSync = true;

        Decision throttled =
                guard.checkAsync(new Msg(1, "b")).toCompletableFuture().get();
        Decision again = guard.checkAsync(new Msg(1, "c")).toCompletableFuture().get();

        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(again.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(notices).as("one notice per window").hasValue(1);
    }

    @Test
    void checkAsync_aNoticeAnswerThatDoesNotFit_isAStorageFailure_andTheStageStillCompletes() throws Exception {
        AtomicInteger notices = new AtomicInteger();
        AtomicInteger decided = new AtomicInteger();
        Guard<Msg> guard = builder()
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .listener((m, d, nanos) -> decided.incrementAndGet())
                .build();
        guard.checkAsync(new Msg(1, "a")).toCompletableFuture().get();
        storage.nullForNotice = true;

        Decision throttled =
                guard.checkAsync(new Msg(1, "b")).toCompletableFuture().get();

        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(notices).hasValue(0);
        assertThat(decided).hasValue(2);
    }

    @Test
    void checkAsync_aStorageThatAnswersNoStageAtAll_givesADegradedDecision_andSkipsTheNotice() throws Exception {
        AtomicInteger notices = new AtomicInteger();
        Guard<Msg> guard = builder()
                .filter("no-links", m -> !m.text().contains("http"))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        storage.noStage = true; // as a stub's generated "return null" does

        Decision decision =
                guard.checkAsync(new Msg(1, "a")).toCompletableFuture().get();
        Decision link = guard.checkAsync(new Msg(1, "http://spam"))
                .toCompletableFuture()
                .get();

        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        assertThat(decision.degraded()).isTrue();
        assertThat(link.filter()).isEqualTo("no-links");
        assertThat(notices).hasValue(0);
    }

    @Test
    void rejectNotice_ofALocalRejection_whileTheBreakerIsOpen_goesToTheFallback() {
        AtomicInteger notices = new AtomicInteger();
        Guard<Msg> guard = builder()
                .filter("no-links", m -> !m.text().contains("http"))
                .breaker(1, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.incrementAndGet())
                .build();
        storage.down = true;
        guard.check(new Msg(1, "a")); // fails: the breaker opens

        Decision link = guard.check(new Msg(2, "http://spam"));
        Decision again = guard.checkAsync(new Msg(2, "http://spam"))
                .toCompletableFuture()
                .join();

        assertThat(link.filter()).isEqualTo("no-links");
        assertThat(again.filter()).isEqualTo("no-links");
        // As for a rejection the fallback decided: the user hears why while the storage is down, once per window.
        assertThat(notices).hasValue(1);
        assertThat(storage.calls).hasValue(1);
    }

    @Test
    void fallback_knowsNoSetMembers_soRegisteredUsersAreNotToldTheyAreUnregistered_andLimitsStillHold()
            throws Exception {
        Guard<Msg> guard = builder()
                .requireRegistration()
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .build();
        guard.registrations().add(1L);
        assertThat(guard.check(new Msg(1, "a")).allowed()).isTrue();
        storage.down = true;

        Decision registered = guard.check(new Msg(1, "b"));
        Decision throttled =
                guard.checkAsync(new Msg(1, "c")).toCompletableFuture().get();
        Decision onlyTheSet = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(Msg::user)
                .requireRegistration()
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .build()
                .check(new Msg(1, "d"));

        // Before, the fallback's empty set rejected every user as UNREGISTERED, for good (retry-after NEVER).
        assertThat(registered.allowed()).isTrue();
        assertThat(registered.degraded()).isTrue();
        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(throttled.degraded()).isTrue();
        assertThat(onlyTheSet.allowed()).isTrue();
        assertThat(onlyTheSet.degraded()).isTrue();
    }

    @Test
    void forgetUser_alsoForgetsWhatTheFallbackKeptAboutTheUser() {
        ReferenceStorage fallback = ReferenceStorage.create();
        Guard<Msg> guard = builder()
                .breaker(100, Duration.ofMinutes(5))
                .onStorageFailure(FailurePolicy.fallbackTo(fallback))
                .build();
        storage.down = true;
        guard.check(new Msg(1, "a"));
        assertThat(guard.check(new Msg(1, "b")).reason()).isEqualTo(Reason.THROTTLED);
        storage.down = false;

        long removed = guard.forgetUser(1L);
        storage.down = true;

        assertThat(guard.check(new Msg(1, "c")).allowed()).isTrue();
        assertThat(removed).as("the fallback's throttle").isEqualTo(1);
    }
}

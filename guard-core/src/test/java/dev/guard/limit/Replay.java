package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;

/**
 * A limit spec driven the way a storage drives it, without expiry: evaluate each request and commit it when it is
 * admitted. Checks on every request that {@link LimitSpec#evaluate} leaves the state as it was.
 */
final class Replay {
    private final LimitSpec spec;
    private final List<Request> admitted = new ArrayList<>();
    private long[] state;
    private long newestCommitMicros = Long.MIN_VALUE;

    Replay(LimitSpec spec) {
        this.spec = spec;
    }

    /** A replay of every request of {@code scenario}. */
    static Replay of(Histories.Scenario scenario) {
        Replay replay = new Replay(scenario.spec());
        for (Request request : scenario.requests()) {
            replay.offer(request);
        }
        return replay;
    }

    /** Evaluates {@code request}, commits it if admitted, and answers the outcome. */
    long offer(Request request) {
        long[] before = state == null ? null : state.clone();
        long outcome = spec.evaluate(state, request.atMicros(), request.permits());
        assertThat(state).as("state after evaluate of %s", request).isEqualTo(before);
        if (Outcome.isAdmitted(outcome)) {
            state = spec.commit(state, request.atMicros(), request.permits());
            admitted.add(request);
            newestCommitMicros = Math.max(newestCommitMicros, request.atMicros());
        }
        return outcome;
    }

    /** A copy of the current state ({@code null}: absent). */
    long[] state() {
        return state == null ? null : state.clone();
    }

    /** The requests admitted so far, in the order they came. */
    List<Request> admitted() {
        return admitted;
    }

    /** The latest time any commit ran at; {@link Long#MIN_VALUE} before the first. */
    long newestCommitMicros() {
        return newestCommitMicros;
    }
}

package dev.guard.examples;

import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A third party's storage, written from the SPI's Javadoc alone: a client of a key-value store (here {@link Server},
 * which stands for the store a company runs), keeping each key's state as the reference functions' {@code long[]}
 * and leaving every limit's arithmetic to {@link LimitSpec}. {@link ThirdPartyStorageTest} and {@link
 * ThirdPartySenderPoolTest} prove it with the contract suites.
 */
final class KeyValueStorage implements Storage {

    /**
     * The key-value store: what every client of it sees. One lock makes a batch atomic; a real store would run the
     * batch where the state lives instead (a script, a transaction).
     */
    static final class Server {
        /**
         * A key's state, the limit that wrote it (a gate merges only with a gate's deadline) and when it becomes
         * absent.
         */
        private record Entry(LimitSpec writer, long[] state, long expiresAtMicros) {}

        private final Object lock = new Object();
        private final Map<StateKey, Entry> states = new ConcurrentHashMap<>();
        private final Map<StateKey, VersionedRecord> records = new ConcurrentHashMap<>();

        /** The state at {@code key} at {@code nowMicros}, or null: a copy, which the reference functions may change. */
        private long[] live(StateKey key, long nowMicros) {
            Entry e = states.get(key);
            if (e == null) {
                return null;
            }
            if (e.expiresAtMicros <= nowMicros) {
                states.remove(key, e);
                return null;
            }
            return e.state.clone();
        }

        private void store(StateKey key, LimitSpec writer, long[] state, long nowMicros) {
            long ttl = state == null ? 0 : writer.ttlMicros(state, nowMicros);
            if (ttl <= 0) {
                states.remove(key);
            } else {
                states.put(key, new Entry(writer, state, plus(nowMicros, ttl)));
            }
        }

        /** {@code a + b} for a non-negative {@code b}, at most {@link Long#MAX_VALUE}. */
        private static long plus(long a, long b) {
            return a > Long.MAX_VALUE - b ? Long.MAX_VALUE : a + b;
        }
    }

    private final Server server;
    private volatile boolean closed;

    /** A client of {@code server}. */
    KeyValueStorage(Server server) {
        this.server = Objects.requireNonNull(server, "server must not be null");
    }

    @Override
    public BatchResult evaluate(Batch batch, long nowMicros) {
        Objects.requireNonNull(batch, "batch must not be null");
        open("evaluate");
        int n = batch.size();
        long[] outcomes = new long[n];
        long[][] states = new long[n][];
        synchronized (server.lock) {
            boolean admitted = true;
            // Every outcome against the state before the batch; the batch commits only when every step admits.
            for (int i = 0; i < n; i++) {
                Step step = batch.step(i);
                states[i] = server.live(step.key(), nowMicros);
                outcomes[i] = step.spec().evaluate(states[i], nowMicros, step.permits());
                admitted &= Outcome.isAdmitted(outcomes[i]);
            }
            if (admitted) {
                for (int i = 0; i < n; i++) {
                    Step step = batch.step(i);
                    if (step.spec() instanceof Gate || step.spec() instanceof Membership) {
                        // Checks only (Storage's Javadoc): their state belongs to raiseGate and addMember, and their
                        // commit would drop another limit's state at the key, which they read as absent.
                        continue;
                    }
                    server.store(
                            step.key(),
                            step.spec(),
                            step.spec().commit(states[i], nowMicros, step.permits()),
                            nowMicros);
                }
            }
        }
        return BatchResult.of(outcomes);
    }

    @Override
    public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        open("raiseGate");
        synchronized (server.lock) {
            Server.Entry e = server.states.get(key);
            // Only a gate's deadline still in force merges; any other state at the key is replaced.
            boolean inForce = e != null && e.writer instanceof Gate && e.state[0] > nowMicros;
            long until = inForce ? Math.max(e.state[0], untilMicros) : untilMicros;
            if (until > nowMicros) {
                server.states.put(key, new Server.Entry(Gate.INSTANCE, new long[] {until}, until));
            } else {
                server.states.remove(key);
            }
            return until;
        }
    }

    @Override
    public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        open("addMember");
        synchronized (server.lock) {
            if (expiresAtMicros <= nowMicros) {
                server.states.remove(key);
            } else {
                server.states.put(
                        key,
                        new Server.Entry(
                                Membership.MUST_BE_ABSENT, Membership.member(expiresAtMicros), expiresAtMicros));
            }
        }
    }

    @Override
    public boolean removeMember(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        open("removeMember");
        synchronized (server.lock) {
            return server.states.remove(key) != null;
        }
    }

    @Override
    public boolean isMember(StateKey key, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        open("isMember");
        synchronized (server.lock) {
            return Membership.isMember(server.live(key, nowMicros), nowMicros);
        }
    }

    @Override
    public Optional<VersionedRecord> getRecord(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        open("getRecord");
        return Optional.ofNullable(server.records.get(key));
    }

    @Override
    public long putRecord(StateKey key, byte[] value, long expectedVersion) {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(value, "value must not be null");
        if (expectedVersion < 0) {
            throw new IllegalArgumentException("expectedVersion must not be negative but was " + expectedVersion);
        }
        open("putRecord");
        synchronized (server.lock) {
            VersionedRecord current = server.records.get(key);
            long version = current == null ? 0 : current.version();
            if (version != expectedVersion) {
                return -1;
            }
            server.records.put(key, new VersionedRecord(value, version + 1));
            return version + 1;
        }
    }

    @Override
    public long forget(String subject) {
        Objects.requireNonNull(subject, "subject must not be null");
        open("forget");
        synchronized (server.lock) {
            long removed = 0;
            for (Map<StateKey, ?> map : List.of(server.states, server.records)) {
                for (Iterator<StateKey> it = map.keySet().iterator(); it.hasNext(); ) {
                    if (it.next().subject().equals(subject)) {
                        it.remove();
                        removed++;
                    }
                }
            }
            return removed;
        }
    }

    @Override
    public StorageHealth health() {
        return closed ? StorageHealth.down(Duration.ZERO, "kv: closed") : StorageHealth.up(Duration.ZERO, "kv");
    }

    @Override
    public void close() {
        closed = true;
    }

    private void open(String operation) {
        if (closed) {
            throw new GuardStorageException("kv", operation, "the storage is closed", null);
        }
    }
}

package dev.guard;

import dev.guard.spi.StateKey;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.util.function.Function;

/**
 * A set of ids kept in the guard's storage: the blocklist, the registered users, or the set of a membership filter
 * ({@link Guard#members}, whose ids may be chats' or a custom key's; the parameters below say user for short).
 * Changes are visible at once to every guard (every process) that shares the storage. Each call is one storage round
 * trip and throws {@link dev.guard.spi.GuardStorageException} when the storage fails: these are administration calls,
 * not the message path. An id stands for its text ({@code toString()}), as in messages: {@code 42L}, {@code 42} and
 * {@code "42"} are one id. Each call throws {@link IllegalArgumentException} for a null id or one without a text (its
 * {@code toString()} returns null or throws), naming the id as the set's key does: {@code userId} for the blocklist,
 * the registrations and a set keyed by {@link KeyBy#USER}, {@code chatId} for one keyed by {@link KeyBy#CHAT}, {@code
 * id} for one with a custom or the global key.
 */
public final class MemberSet {
    private final Storage storage;
    private final Ticker ticker;
    private final String scope;
    /** What the errors call an id: {@code userId}, {@code chatId} or {@code id}, as the set is keyed. */
    private final String idName;
    /** The subject of a non-null id: a user's for the blocklist and the registrations. */
    private final Function<Object, String> subject;

    MemberSet(Storage storage, Ticker ticker, String scope) {
        this(storage, ticker, scope, "userId", id -> Subjects.user(Subjects.text("userId", id)));
    }

    /**
     * A set at {@code scope} whose errors call an id {@code idName}; {@code subject} makes a non-null id's subject and
     * names an id without a text {@code idName} as well.
     */
    MemberSet(Storage storage, Ticker ticker, String scope, String idName, Function<Object, String> subject) {
        this.storage = storage;
        this.ticker = ticker;
        // Without a tenant, the same instance as the guard's own steps use for the set (see Guard's Stateful): a
        // storage that finds a scope by identity before comparing texts (the memory storage does) then finds the
        // set's members at once. Under a tenant the steps' scope is another instance (TenantScopes), found by text.
        this.scope = scope.intern();
        this.idName = idName;
        this.subject = subject;
    }

    /** Adds {@code userId} for good. */
    public void add(Object userId) {
        storage.addMember(key(userId), Long.MAX_VALUE, ticker.epochMicros());
    }

    /**
     * Adds {@code userId} for {@code duration}, replacing an earlier expiry.
     *
     * @throws IllegalArgumentException if {@code duration} is not positive, or shorter than a microsecond (the
     *     storage's unit, in which it would be no membership at all)
     */
    public void add(Object userId, Duration duration) {
        Durations.positive("duration", duration);
        long now = ticker.epochMicros();
        storage.addMember(key(userId), Durations.deadline(now, duration), now);
    }

    /**
     * Removes {@code userId}; returns whether the storage held an entry for it, which a membership that expired but
     * was not yet swept may still be (use {@link #contains} for whether it was a member now).
     */
    public boolean remove(Object userId) {
        return storage.removeMember(key(userId));
    }

    /** Whether {@code userId} is a member now. */
    public boolean contains(Object userId) {
        return storage.isMember(key(userId), ticker.epochMicros());
    }

    private StateKey key(Object userId) {
        if (userId == null) {
            throw new IllegalArgumentException(idName + " must not be null");
        }
        return new StateKey(scope, subject.apply(userId));
    }
}

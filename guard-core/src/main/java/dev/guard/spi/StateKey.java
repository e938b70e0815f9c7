package dev.guard.spi;

import java.util.Objects;

/**
 * The key of one piece of state: a {@code scope} (which limit, which handler, which tenant, which set) and a
 * {@code subject} (whom the state is about: a user, a chat, a sender, or
 * {@link #GLOBAL}). {@link Storage#forget(String)} removes every key of a subject.
 *
 * <p>Both parts may hold any characters (unicode, newlines, braces, quotes, kilobytes of text); each backend
 * encodes them so that distinct keys never collide.
 *
 * @param scope what the state is for, never empty
 * @param subject whom the state is about, never null
 */
public record StateKey(String scope, String subject) {
    /** The subject of state shared by everyone (a global limit). */
    public static final String GLOBAL = "*";

    /**
     * Creates a key.
     *
     * @throws IllegalArgumentException if {@code scope} is null or empty, or {@code subject} is null
     */
    public StateKey {
        if (scope == null || scope.isEmpty()) {
            throw new IllegalArgumentException("scope must not be empty but was " + (scope == null ? "null" : "''"));
        }
        Objects.requireNonNull(subject, "subject must not be null");
    }

    // Explicit rather than generated: every storage lookup hashes and compares keys, and the generated methods go
    // through method handles that the JIT does not always inline on that path.

    @Override
    public boolean equals(Object o) {
        return this == o || (o instanceof StateKey k && scope.equals(k.scope) && subject.equals(k.subject));
    }

    @Override
    public int hashCode() {
        return hash(scope, subject);
    }

    /**
     * The {@link #hashCode} of the key of {@code scope} and {@code subject}, without building it: for storages that
     * read a batch's keys as their parts ({@link BatchBuffer#scope}, {@link BatchBuffer#subject}).
     */
    public static int hash(String scope, String subject) {
        return scope.hashCode() * 31 + subject.hashCode();
    }
}

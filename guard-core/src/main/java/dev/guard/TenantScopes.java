package dev.guard;

/**
 * The scopes of a handler scope's steps under the tenants its guard views met last (one instance per handler scope, for
 * the first 16 handler scopes: see {@code Guard.Plan#tenantScopes}), so that a guard with a tenant extractor does not
 * build the tenant's prefix and a scope per step for every message (a string each, hashed again by the storage), and
 * passes the same scope strings for a tenant message after message (which the memory storage compares by identity
 * first). They are not interned: a set administered under a tenant ({@code Guard#registrations(String)}) names its
 * scope with another instance of the same text. Thread-safe without locks: each place holds an immutable {@link Tenant}
 * or null, read and replaced as a whole; a thread that misses builds the tenant's scopes, as every message did before,
 * and leaves them in the place.
 *
 * <p><b>Places.</b> {@link #PLACES} in all, in pairs: a tenant may sit in either place of the pair its hash picks,
 * so that two tenants of one pair (100 tenants in 256 pairs leave about a third of them sharing a pair with another)
 * do not take each other's place at every message; only a third in the pair does. A tenant that misses goes to the
 * pair's first place, and the one there moves to the second. Bots with more tenants than places share them: a tenant
 * whose places others took builds its scopes again, and a bounded number of them stays reachable.
 */
final class TenantScopes {
    /** How many tenants are kept at most. */
    static final int PLACES = 512;

    /** A tenant's text, its prefix ({@link Subjects#tenantPrefix}) and the guard's scopes under it. */
    record Tenant(String text, String prefix, String[] scopes) {}

    private final String[] base;
    private final Tenant[] places = new Tenant[PLACES];

    /** Scopes under tenants of {@code base}, the guard's own scopes (which it must not change). */
    TenantScopes(String[] base) {
        this.base = base;
    }

    /** The tenant of {@code text} with {@code base}, a guard's scopes, under its prefix: built, not kept. */
    static Tenant built(String text, String[] base) {
        String prefix = Subjects.tenantPrefix(text);
        String[] scopes = new String[base.length];
        for (int i = 0; i < scopes.length; i++) {
            scopes[i] = prefix + base[i];
        }
        return new Tenant(text, prefix, scopes);
    }

    /** The tenant of {@code text} (a tenant's {@code toString()}, not null), from a place when it is there. */
    Tenant of(String text) {
        int hash = text.hashCode();
        int first = ((hash ^ (hash >>> 16)) & (PLACES / 2 - 1)) << 1;
        Tenant kept = places[first];
        if (kept != null && kept.text.equals(text)) {
            return kept;
        }
        Tenant other = places[first + 1];
        if (other != null && other.text.equals(text)) {
            return other;
        }
        Tenant tenant = built(text, base);
        // Racy, as every place is: another thread may store in between, and one of two tenants may be lost.
        places[first + 1] = kept;
        places[first] = tenant;
        return tenant;
    }
}

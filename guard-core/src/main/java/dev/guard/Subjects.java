package dev.guard;

import dev.guard.internal.Interrupts;

/**
 * How a guard names subjects and scopes in the storage. Prefixes keep the kinds of id apart (user 42 and chat 42 are
 * different subjects), and NUL separates the parts of a scope: names are checked to hold no control characters,
 * and the one free-form part that may precede others, the tenant, is length-prefixed.
 */
final class Subjects {
    private Subjects() {}

    static final String USER = "u:";
    static final String CHAT = "c:";
    static final String CUSTOM = "k:";

    static String user(String id) {
        return USER + id;
    }

    static String chat(String id) {
        return CHAT + id;
    }

    /**
     * Whether a user subject and a chat subject (either may be null) name the same id, as a user's private chat does
     * on Telegram. The prefixes {@link #USER} and {@link #CHAT} have the same length.
     */
    static boolean sameId(String userSubject, String chatSubject) {
        int prefix = USER.length();
        return userSubject != null
                && chatSubject != null
                && userSubject.length() == chatSubject.length()
                && userSubject.regionMatches(prefix, chatSubject, prefix, userSubject.length() - prefix);
    }

    /**
     * The text of an id given to an administration call (a set, a pause, forgetting), which names the id's key as the
     * message path does: {@code id.toString()}. An id without one is refused rather than read as {@code "null"}, the
     * text of another id.
     *
     * @param what the argument's name, for the message
     * @param id a non-null id
     * @throws IllegalArgumentException if {@code id.toString()} returns null or throws
     */
    static String text(String what, Object id) {
        String text;
        try {
            text = id.toString();
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too, and a bare Throwable, as the message path catches them
            Interrupts.keep(e);
            throw new IllegalArgumentException(what + " must have a text but its toString() threw " + e, e);
        }
        if (text == null) {
            throw new IllegalArgumentException(what + " must have a text but its toString() returned null");
        }
        return text;
    }

    static String tenantPrefix(String tenant) {
        return tenant == null ? "" : "t" + tenant.length() + ":" + tenant + '\0';
    }

    static String handlerPrefix(String handlerScope) {
        return handlerScope == null ? "" : "h:" + handlerScope + '\0';
    }

    /** Checks that a configured name is usable in a scope. */
    static String checkName(String what, String name) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException(
                    what + " must not be blank but was " + (name == null ? "null" : "'" + name + "'"));
        }
        for (int i = 0; i < name.length(); i++) {
            if (Character.isISOControl(name.charAt(i))) {
                throw new IllegalArgumentException(
                        what + " must not contain control characters but was '" + name.replace("\n", "\\n") + "'");
            }
        }
        return name;
    }
}

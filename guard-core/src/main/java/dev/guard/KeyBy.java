package dev.guard;

/**
 * Whose state a filter keeps: the user's, the chat's, the user's within one chat, or one global state. A filter
 * may also take a custom key extractor instead (see {@link Guard.Builder#limit(String, java.util.function.Function,
 * dev.guard.limit.LimitSpec)}).
 *
 * <p>A message that has no id for the key (a channel post without a user, a service message without a chat) is
 * handled by the guard's {@link MissingKeyPolicy}: by default the filter does not apply to it.
 */
public enum KeyBy {
    /** One state per user, across chats. */
    USER,
    /**
     * One state per chat, shared by its members (a busy group). A limit's state in a private chat (a chat whose id is
     * the message's user's, as on Telegram) is kept under the user, with the user's other keys, and {@link
     * Guard#forgetUser} removes it; sets and gates keyed by chat stay under the chat, whose id administers them.
     */
    CHAT,
    /** One state per user in each chat. */
    CHAT_USER,
    /** One state for everybody. */
    GLOBAL
}

package dev.guard.route;

/** What kind of chat a message goes to; platforms limit groups differently from one-to-one chats. */
public enum ChatKind {
    /** A one-to-one chat with a user (Telegram private chat, a WhatsApp user). */
    PRIVATE,
    /**
     * A group or supergroup (and a channel: Telegram publishes no limit for channels, and a group's is the stricter
     * guess). Telegram holds a bot to 20 messages a minute in one group, on top of one a second in any chat.
     */
    GROUP
}

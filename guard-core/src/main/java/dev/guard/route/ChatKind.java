package dev.guard.route;

/** What kind of chat a message goes to; platforms limit groups differently from one-to-one chats. */
public enum ChatKind {
    /** A one-to-one chat with a user (Telegram private chat, a WhatsApp user). */
    PRIVATE,
    /** A group, supergroup or channel: Telegram limits these to about 20 messages per minute. */
    GROUP
}

package dev.guard.examples;

/**
 * A chat update as a bot framework hands it over, reduced to what the examples need: Telegram's {@code Update} or a
 * WhatsApp webhook payload would be adapted to this shape in a real bot.
 *
 * @param userId the sender, or null for a channel post
 * @param chatId the chat, or null for an inline query
 * @param text the message text or the callback data of a button press
 * @param fromBot whether the sender is another bot
 * @param mediaGroupId the media album that the message is a part of, or null when it is none's
 */
public record Update(Long userId, Long chatId, String text, boolean fromBot, String mediaGroupId) {
    /** An update that is not part of a media album. */
    public Update(Long userId, Long chatId, String text, boolean fromBot) {
        this(userId, chatId, text, fromBot, null);
    }

    /** A text message from a human user in a chat. */
    public static Update text(long userId, long chatId, String text) {
        return new Update(userId, chatId, text, false);
    }
}

package dev.guard.route;

import dev.guard.limit.LimitSpec;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import java.time.Duration;
import java.util.Locale;

/**
 * A platform's published limits, ready for a {@link SenderPool}: messages per second per sender, the limits of one
 * chat (private and group) and an optional limit shared by the whole pool.
 *
 * <p>Every limit here is one that the platform publishes; Guard only helps a bot stay inside them. Where a
 * platform says "about", the preset takes the published number as the ceiling, and every window is enforced so that
 * no interval of the window's length ever holds more than the limit (the platform's counting is unknown, so Guard
 * errs on the safe side). Chat limits are kept per recipient, not per sender and recipient: spreading one chat's
 * messages over several senders never multiplies what a recipient receives. The platforms count them per bot (or
 * number) and chat, so for a chat that several senders write to the pool is stricter than they are.
 *
 * <p>A per-day limit ({@link #withPerDay}, {@link Sender.Builder#perDay}) is a moving 24 hours, never a calendar day:
 * it is counted in one-hour steps (aligned to UTC hours), so a message stops counting between 24 and 25 hours after
 * it was sent, and nothing resets at midnight in any zone. WhatsApp's messaging limit is a moving 24 hours too;
 * Telegram publishes no daily limit.
 *
 * <p>Immutable and thread-safe.
 */
public final class PlatformPreset {
    /** Sub-buckets of the per-second window: the counter rejects at most 100 ms early and never admits more. */
    static final int SECOND_BUCKETS = 10;

    private final String name;
    private final long perSecond;
    private final long perDay;
    private final LimitSpec privateChat;
    private final LimitSpec groupChat;
    private final LimitSpec global;
    /** Whether a group is also held to {@link #privateChat}, the limit of any one chat, on top of its own. */
    private final boolean chatLimitInGroups;
    /** Whether chat ids follow Telegram's Bot API, whose ids tell a group's from a private chat's. */
    private final boolean telegramChatIds;

    private PlatformPreset(
            String name,
            long perSecond,
            long perDay,
            LimitSpec privateChat,
            LimitSpec groupChat,
            LimitSpec global,
            boolean chatLimitInGroups,
            boolean telegramChatIds) {
        this.name = name;
        this.perSecond = perSecond;
        this.perDay = perDay;
        this.privateChat = privateChat;
        this.groupChat = groupChat;
        this.global = global;
        this.chatLimitInGroups = chatLimitInGroups;
        this.telegramChatIds = telegramChatIds;
    }

    /**
     * Telegram Bot API: about 30 messages per second per bot, one message per second in any one chat, 20 messages per
     * minute in one group; beyond them Telegram answers 429 with {@code retry_after}. No daily limit.
     *
     * <p>Source: Telegram's Bot FAQ, "My bot is hitting limits, how do I avoid this?"
     * (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this). Within one chat, bots should
     * keep to one message a second; Telegram tolerates short bursts above that before it starts answering 429. For
     * bulk notifications to many users the API takes roughly 30 messages a second at most, and Telegram suggests
     * spreading a large notification over 8 to 12 hours. A bot cannot send more than 20 messages a minute to one
     * group. The 429's {@code retry_after} is in {@code ResponseParameters}
     * (https://core.telegram.org/bots/api#responseparameters): feed it to {@link SendDecision.Granted#retryAfter}.
     *
     * <p>How the preset reads that: the 30 a second, which the FAQ states for bulk notifications, holds for everything
     * a bot sends (the safe reading); the bursts are unspecified and not used; the one message a second is about any
     * chat, so a group gets both limits, at most one message a second and 20 a minute. The FAQ says nothing of
     * channels: send to one as a group ({@link OutboundMessage#inGroup}), the stricter choice.
     *
     * <p>Telegram's ids say which chats are groups: a group, supergroup or channel has a negative id, or is addressed
     * by {@code @username}, while a private chat's id is its user's, positive. A message to such a chat gets the
     * group limits even when it is not marked {@link OutboundMessage#inGroup}, so a forgotten mark cannot send a group
     * three times its limit; the count is the group's either way. A chat of another id (positive, or a key of the
     * bot's own) is a group only when the message says so.
     */
    public static PlatformPreset telegram() {
        return new PlatformPreset(
                "telegram", 30, 0, exact(1, Duration.ofSeconds(1)), exact(20, Duration.ofMinutes(1)), null, true, true);
    }

    /**
     * Telegram paid broadcasts: up to 1000 messages per second per bot when each message is sent with {@code
     * allow_paid_broadcast} (for a fee in Telegram Stars); chat limits as in {@link #telegram()}.
     *
     * <p>Source: Telegram Bot API, section "Paid Broadcasts" (https://core.telegram.org/bots/api#paid-broadcasts),
     * and the parameter {@code allow_paid_broadcast} of {@code sendMessage} and the other sending methods
     * (https://core.telegram.org/bots/api#sendmessage). Once its developer has enabled Paid Broadcasts in
     * {@code @BotFather}, a bot may broadcast up to 1000 messages a second with the parameter instead of about 30;
     * Telegram charges 0.1 Stars from the bot's balance for each message above the free 30 a second, and only for
     * messages that went out. Telegram also sets conditions on the bot, and its two pages differ on them: the Bot API
     * page asks for at least 10,000 Stars on the balance, the Bot FAQ for 100,000 Stars and 100,000 monthly active
     * users. Without Paid Broadcasts enabled, Telegram's usual limit holds, and its 429s come above it, whatever this
     * preset allows.
     *
     * <p>The parameter lifts the broadcast limit only; the preset keeps the limits of one chat, which Telegram does
     * not say it lifts. Use it only for messages that really carry the parameter: a pool of this preset and a pool
     * of {@link #telegram()} with the same name share the bots' per-second counts, each under its own ceiling.
     */
    public static PlatformPreset telegramPaidBroadcast() {
        return new PlatformPreset(
                "telegram-paid-broadcast",
                1000,
                0,
                exact(1, Duration.ofSeconds(1)),
                exact(20, Duration.ofMinutes(1)),
                null,
                true,
                true);
    }

    /**
     * WhatsApp Cloud API: 80 messages per second per business phone number (the default throughput), one message
     * every 6 seconds to one user, and the business portfolio's messaging limit: messages outside a customer
     * service window to {@code tier} unique users per moving 24 hours, shared by all numbers of the portfolio (the
     * pool's global limit).
     *
     * <p>Throughput, per Meta's "Throughput" page
     * (https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput): each registered business
     * number handles 80 messages a second by default, and Meta raises eligible numbers to 1,000 on its own; a number
     * shared with the WhatsApp Business app has a fixed 20. The throughput counts incoming and outgoing messages of
     * every type together; beyond it the API answers error 130429. The pool counts only the messages it sends, so
     * leave room for the ones the number receives: give its senders a lower {@link Sender.Builder#perSecond} (80 less
     * the inbound peak; 20 less it for a shared number, 1,000 less it after an upgrade), or set it at run time with
     * {@link SenderPool#setGroupLimits}.
     *
     * <p>Pair rate, per the "Pair rate limits" section of Meta's "About the WhatsApp Business Platform" page
     * (https://developers.facebook.com/documentation/business-messaging/whatsapp/about-the-platform#rate-limits): one
     * number may send one user one message every 6 seconds (about 10 a minute, 600 an hour); beyond that the API
     * answers error 131056 until the pair is back within the rate (the limit is the pair's: other users can be
     * messaged meanwhile). Meta allows a burst of up to 45 messages in 6 seconds, but borrowed from the pair's quota:
     * after it the number must wait as long as those messages take at the normal rate (about 2 minutes after a burst
     * of 20). The preset takes one message in any 6-second window and no burst, the rate that never borrows; a bot
     * that needs the burst (an album, a few replies in a row) can build a preset of its own ({@link #of}) whose chat
     * limit is a {@link dev.guard.limit.TokenBucket} of 45 that gains one message every 6 seconds, which is how that
     * description reads. WhatsApp counts the pair per number and user; the pool holds the user to it across all
     * numbers.
     *
     * <p>Messaging limits, per Meta's "Messaging limits" page
     * (https://developers.facebook.com/documentation/business-messaging/whatsapp/messaging-limits): how many unique
     * WhatsApp users a business may deliver messages to outside a customer service window in a moving 24 hours; 250
     * for a new business portfolio, then 2,000 after a scaling path, and 10,000, 100,000 and unlimited by automatic
     * scaling. The limit belongs to the portfolio, and all of its numbers draw on it. The pool counts messages, not
     * unique users, against the tier: a user messaged twice counts twice, and so does a message sent again after a
     * 429, which errs on the safe side. Replies inside a customer service window do not count towards the tier on
     * WhatsApp, but the pool cannot tell them apart. A pool of its own for them, with a custom preset ({@link #of}) of
     * the same per-number and per-pair limits and no global one, shares those limits with this pool only if it has the
     * same name: every limit is kept under its pool's name.
     *
     * @throws IllegalArgumentException if {@code tier} is null
     */
    public static PlatformPreset whatsAppCloud(WhatsAppTier tier) {
        if (tier == null) {
            throw new IllegalArgumentException("tier must not be null");
        }
        LimitSpec global = tier.users == 0
                ? null
                : new SlidingWindowCounter(tier.users, Duration.ofHours(24), SenderPool.DAY_BUCKETS);
        LimitSpec pair = exact(1, Duration.ofSeconds(6));
        // The pair limit is already the group limit: applying it twice would change nothing.
        return new PlatformPreset(
                "whatsapp-cloud-" + tier.name().toLowerCase(Locale.ROOT), 80, 0, pair, pair, global, false, false);
    }

    /**
     * A preset of your own.
     *
     * @param name a name for logs and exports
     * @param perSecond messages per second per sender
     * @param privateChat the limit of one private chat (any {@link LimitSpec} except gates and memberships)
     * @param groupChat the limit of one group (a group is held to this limit only, not to {@code privateChat})
     * @throws IllegalArgumentException if {@code name} is empty, {@code perSecond} is not positive or not below
     *     2^53, or a chat limit is missing or is a gate, a membership or a duplicate window
     */
    public static PlatformPreset of(String name, long perSecond, LimitSpec privateChat, LimitSpec groupChat) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("name must not be empty but was " + (name == null ? "null" : "''"));
        }
        Sender.checkCount("perSecond", perSecond);
        return new PlatformPreset(
                name,
                perSecond,
                0,
                checkQuota("privateChat", privateChat),
                checkQuota("groupChat", groupChat),
                null,
                false,
                false);
    }

    /**
     * This preset with a limit shared by every sender of the pool (and every pool of the same name over the same
     * storage), such as a portfolio's daily reach.
     *
     * @throws IllegalArgumentException if {@code global} is null, a gate, a membership or a duplicate window
     */
    public PlatformPreset withGlobal(LimitSpec global) {
        return new PlatformPreset(
                name,
                perSecond,
                perDay,
                privateChat,
                groupChat,
                checkQuota("global", global),
                chatLimitInGroups,
                telegramChatIds);
    }

    /**
     * This preset with a daily limit per sender: a moving 24 hours counted in one-hour steps, never a calendar day (see
     * the class description); zero removes it.
     *
     * @throws IllegalArgumentException if {@code perDay} is negative or not below 2^53
     */
    public PlatformPreset withPerDay(long perDay) {
        Sender.checkCountOrZero("perDay", perDay);
        return new PlatformPreset(
                name, perSecond, perDay, privateChat, groupChat, global, chatLimitInGroups, telegramChatIds);
    }

    /** The preset's name. */
    public String name() {
        return name;
    }

    /** Messages per second per sender. */
    public long perSecond() {
        return perSecond;
    }

    /** Messages per moving 24 hours per sender (see the class description); zero when unlimited. */
    public long perDay() {
        return perDay;
    }

    /** The limit of one private chat. */
    public LimitSpec privateChat() {
        return privateChat;
    }

    /** The limit of one group; for Telegram a group is also held to {@link #privateChat()}, the limit of any chat. */
    public LimitSpec groupChat() {
        return groupChat;
    }

    /** Whether a group is held to {@link #privateChat()} as well as to {@link #groupChat()}. */
    boolean chatLimitInGroups() {
        return chatLimitInGroups;
    }

    /**
     * Whether {@code chat} is a group's id by the platform's own numbering, whatever the message says: on Telegram a
     * negative id (groups, supergroups and channels have them; a private chat's id is its user's, positive) or an
     * {@code @username}, which the Bot API takes for public supergroups and channels only. Ids of the bot's own making
     * ({@code "user-7"}) tell nothing.
     */
    boolean isGroupId(String chat) {
        if (!telegramChatIds || chat.length() < 2) {
            return false;
        }
        char first = chat.charAt(0);
        char second = chat.charAt(1);
        return first == '@' || first == '-' && second >= '0' && second <= '9';
    }

    /** The limit shared by the pool, or null. */
    public LimitSpec global() {
        return global;
    }

    /**
     * WhatsApp business portfolio messaging limits: unique users reached outside a customer service window per moving
     * 24 hours.
     */
    public enum WhatsAppTier {
        /** A new portfolio: 250. */
        TIER_250(250),
        /** After a scaling path: 2,000. */
        TIER_2K(2_000),
        /** 10,000, by automatic scaling. */
        TIER_10K(10_000),
        /** 100,000, by automatic scaling. */
        TIER_100K(100_000),
        /** Unlimited: no global limit. */
        UNLIMITED(0);

        private final long users;

        WhatsAppTier(long users) {
            this.users = users;
        }

        /** Unique users per 24 hours; zero when unlimited. */
        public long users() {
            return users;
        }
    }

    private static LimitSpec exact(long limit, Duration window) {
        return new SlidingWindowLog(limit, window);
    }

    static LimitSpec checkQuota(String field, LimitSpec spec) {
        if (spec == null) {
            throw new IllegalArgumentException(field + " must not be null");
        }
        if (spec instanceof dev.guard.limit.Gate
                || spec instanceof dev.guard.limit.Membership
                || spec instanceof dev.guard.limit.DuplicateWindow) {
            // A duplicate window's permits are the item it remembers: every send, item 1, would be a duplicate.
            throw new IllegalArgumentException(field + " must be a quota, not " + spec);
        }
        return spec;
    }

    @Override
    public String toString() {
        return "PlatformPreset[" + name + ", perSecond=" + perSecond + (perDay == 0 ? "" : ", perDay=" + perDay)
                + ", privateChat=" + privateChat + ", groupChat=" + groupChat
                + (global == null ? "" : ", global=" + global) + "]";
    }
}

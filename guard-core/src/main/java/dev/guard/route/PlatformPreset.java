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
 * <p>Every limit here is one that the platform documents; Guard only helps a bot stay inside them. Where a platform
 * says "about", the preset takes the published number as the ceiling, and every window is enforced so that no
 * interval of the window's length ever holds more than the limit (the platform's counting is unknown, so Guard
 * errs on the safe side). Chat limits are kept per recipient, not per sender and recipient: spreading one chat's
 * messages over several senders never multiplies what a recipient receives.
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

    private PlatformPreset(
            String name,
            long perSecond,
            long perDay,
            LimitSpec privateChat,
            LimitSpec groupChat,
            LimitSpec global,
            boolean chatLimitInGroups) {
        this.name = name;
        this.perSecond = perSecond;
        this.perDay = perDay;
        this.privateChat = privateChat;
        this.groupChat = groupChat;
        this.global = global;
        this.chatLimitInGroups = chatLimitInGroups;
    }

    /**
     * Telegram Bot API: about 30 messages per second per bot to different chats, one message per second in a chat,
     * 20 messages per minute in a group; beyond them Telegram answers 429 with {@code retry_after}.
     *
     * <p>Source: Telegram Bot FAQ, "My bot is hitting limits, how do I avoid this?"
     * (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this): "avoid sending more than
     * one message per second" in a chat ("we may allow short bursts that go over this limit"), "the API will not
     * allow more than 30 messages per second or so" for bulk notifications, "not able to send more than 20 messages
     * per minute to the same group". The 429's {@code retry_after} is in {@code ResponseParameters}
     * (https://core.telegram.org/bots/api#responseparameters): feed it to {@link SendDecision.Granted#retryAfter}.
     * The preset does not use the short bursts: they are unspecified. The one message per second holds in every
     * chat, groups included: a group gets both limits, at most one message per second and 20 per minute.
     */
    public static PlatformPreset telegram() {
        return new PlatformPreset(
                "telegram", 30, 0, exact(1, Duration.ofSeconds(1)), exact(20, Duration.ofMinutes(1)), null, true);
    }

    /**
     * Telegram paid broadcasts: up to 1000 messages per second per bot when each message is sent with {@code
     * allow_paid_broadcast} (for a fee in Telegram Stars per message); chat limits as in {@link #telegram()}.
     *
     * <p>Source: Telegram Bot API, {@code sendMessage}, parameter {@code allow_paid_broadcast}: "Pass True to allow up
     * to 1000 messages per second, ignoring broadcasting limits for a fee of 0.1 Telegram Stars per message"
     * (https://core.telegram.org/bots/api#sendmessage).
     */
    public static PlatformPreset telegramPaidBroadcast() {
        return new PlatformPreset(
                "telegram-paid-broadcast",
                1000,
                0,
                exact(1, Duration.ofSeconds(1)),
                exact(20, Duration.ofMinutes(1)),
                null,
                true);
    }

    /**
     * WhatsApp Cloud API: 80 messages per second per business phone number (the default throughput), about one
     * message every 6 seconds to one user, and the business portfolio's messaging limit: business-initiated
     * messages to {@code tier} unique users per moving 24 hours, shared by all numbers of the portfolio (the pool's
     * global limit).
     *
     * <p>Sources: Meta, WhatsApp Cloud API "Throughput"
     * (https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput): "up to 80 messages per
     * second (mps) by default" per registered business phone number, error 130429 beyond it, and a "pair rate limit"
     * for too many messages from one number to the same WhatsApp user, without a number. Meta's error codes list
     * 131056, "pair rate limit hit": wait before messaging that user again; other users can be messaged at once.
     * Meta's description of the pair rate, as integrators quote it, is about one message every 6 seconds to the same
     * user (some 10 a minute), with short bursts allowed (up to 45 messages in 6 seconds) that are paid back by a
     * correspondingly longer wait afterwards. The preset takes one message per 6 seconds as the ceiling of every
     * 6-second window and uses no burst, whose payback is not specified closely enough to enforce safely.
     *
     * <p>"Messaging limits" (https://developers.facebook.com/docs/whatsapp/messaging-limits): 250 for new business
     * portfolios, then 2,000, 10,000, 100,000 and unlimited unique users per moving 24 hours, "calculated and set at
     * the business portfolio level and shared by all business phone numbers". The pool counts messages, not unique
     * users, against the tier: a user messaged twice counts twice, which errs on the safe side. Replies inside a
     * customer service window do not count towards the tier on WhatsApp, but the pool cannot tell them apart. A pool
     * of its own for them, with a custom preset ({@link #of}) of the same per-number and per-pair limits and no
     * global one, shares those limits with this pool only if it has the same name: every limit is kept under its
     * pool's name.
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
                "whatsapp-cloud-" + tier.name().toLowerCase(Locale.ROOT), 80, 0, pair, pair, global, false);
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
                name, perSecond, perDay, privateChat, groupChat, checkQuota("global", global), chatLimitInGroups);
    }

    /**
     * This preset with a daily limit per sender (moving 24 hours); zero removes it.
     *
     * @throws IllegalArgumentException if {@code perDay} is negative or not below 2^53
     */
    public PlatformPreset withPerDay(long perDay) {
        Sender.checkCountOrZero("perDay", perDay);
        return new PlatformPreset(name, perSecond, perDay, privateChat, groupChat, global, chatLimitInGroups);
    }

    /** The preset's name. */
    public String name() {
        return name;
    }

    /** Messages per second per sender. */
    public long perSecond() {
        return perSecond;
    }

    /** Messages per moving 24 hours per sender; zero when unlimited. */
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

    /** The limit shared by the pool, or null. */
    public LimitSpec global() {
        return global;
    }

    /** WhatsApp business portfolio messaging limits: unique users per moving 24 hours. */
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

package dev.guard.route;

import dev.guard.ManualTicker;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A chat platform without a network, enforcing Telegram-like limits the way a strict platform would: at most {@code
 * perBot} messages per bot in any second, one message per private chat in any second, 20 per group in any minute.
 * Beyond them it answers 429 with a {@code retry_after} in whole seconds, like the Bot API. It can throttle a bot
 * (answer 429 to everything it sends for a while) and block one (403 from then on). It records every message it
 * accepted, with its time, so tests can check windows afterwards.
 */
final class SimulatedPlatform {
    /** What the platform answered. */
    record Response(int status, long retryAfterSeconds) {
        static final Response OK = new Response(200, 0);
        static final Response FORBIDDEN = new Response(403, 0);

        static Response tooMany(long seconds) {
            return new Response(429, seconds);
        }
    }

    /** One accepted message. */
    record Sent(String bot, String chat, long atMicros) {}

    private static final long SECOND = 1_000_000L;

    private final ManualTicker ticker;
    private final int perBot;
    private final Map<String, ArrayDeque<Long>> botWindows = new HashMap<>();
    private final Map<String, Long> lastPrivate = new HashMap<>();
    private final Map<String, ArrayDeque<Long>> groupWindows = new HashMap<>();
    private final Map<String, Long> throttledUntil = new HashMap<>();
    private final Map<String, Long> throttleRetryAfter = new HashMap<>();
    private final Set<String> blocked = new HashSet<>();
    private final List<Sent> accepted = new ArrayList<>();
    private final Map<String, Integer> attempts = new HashMap<>();
    private int tooMany;
    private int forbidden;

    SimulatedPlatform(ManualTicker ticker, int perBot) {
        this.ticker = ticker;
        this.perBot = perBot;
    }

    /** From now until {@code untilMicros}, every message of {@code bot} draws a 429 with {@code retryAfterSeconds}. */
    void throttle(String bot, long untilMicros, long retryAfterSeconds) {
        throttledUntil.put(bot, untilMicros);
        throttleRetryAfter.put(bot, retryAfterSeconds);
    }

    /** From now on, every message of {@code bot} draws a 403. */
    void block(String bot) {
        blocked.add(bot);
    }

    Response send(String bot, String chat, ChatKind kind) {
        long now = ticker.epochMicros();
        attempts.merge(bot, 1, Integer::sum);
        if (blocked.contains(bot)) {
            forbidden++;
            return Response.FORBIDDEN;
        }
        Long throttled = throttledUntil.get(bot);
        if (throttled != null && now < throttled) {
            tooMany++;
            return Response.tooMany(throttleRetryAfter.get(bot));
        }
        ArrayDeque<Long> window = botWindows.computeIfAbsent(bot, b -> new ArrayDeque<>());
        long wait = waitFor(window, perBot, SECOND, now);
        if (kind == ChatKind.PRIVATE) {
            Long last = lastPrivate.get(chat);
            if (last != null && now < last + SECOND) {
                wait = Math.max(wait, last + SECOND - now);
            }
        } else {
            wait = Math.max(
                    wait, waitFor(groupWindows.computeIfAbsent(chat, c -> new ArrayDeque<>()), 20, 60 * SECOND, now));
        }
        if (wait > 0) {
            tooMany++;
            return Response.tooMany((wait + SECOND - 1) / SECOND);
        }
        window.addLast(now);
        if (kind == ChatKind.PRIVATE) {
            lastPrivate.put(chat, now);
        } else {
            groupWindows.get(chat).addLast(now);
        }
        accepted.add(new Sent(bot, chat, now));
        return Response.OK;
    }

    /** Microseconds until {@code window} admits one more, after dropping what left it; zero when it admits now. */
    private static long waitFor(ArrayDeque<Long> window, int limit, long length, long now) {
        while (!window.isEmpty() && window.peekFirst() + length <= now) {
            window.pollFirst();
        }
        return window.size() < limit ? 0 : window.peekFirst() + length - now;
    }

    List<Sent> accepted() {
        return accepted;
    }

    int tooMany() {
        return tooMany;
    }

    int forbidden() {
        return forbidden;
    }

    int attempts(String bot) {
        return attempts.getOrDefault(bot, 0);
    }

    /** The most messages {@code bot} sent in any window of {@code lengthMicros}. */
    int maxInWindow(String bot, long lengthMicros) {
        ArrayDeque<Long> window = new ArrayDeque<>();
        int max = 0;
        for (Sent s : accepted) {
            if (!s.bot().equals(bot)) {
                continue;
            }
            window.addLast(s.atMicros());
            while (window.peekFirst() + lengthMicros <= s.atMicros()) {
                window.pollFirst();
            }
            max = Math.max(max, window.size());
        }
        return max;
    }
}

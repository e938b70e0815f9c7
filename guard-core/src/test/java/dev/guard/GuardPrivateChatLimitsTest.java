package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.Membership;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A limit keyed by {@link KeyBy#CHAT} keeps a private chat's state (the chat whose id is its user's, as on Telegram)
 * under the user's subject, on the chain's path and on the one-filter path alike: {@link Guard#forgetUser} removes it,
 * and a group's stays. Sets and gates keyed by chat keep the chat's subject, since they are administered by chat id.
 */
class GuardPrivateChatLimitsTest {
    record Msg(Object user, Object chat, String text) {}

    private final ManualTicker ticker = ManualTicker.create();
    private final ReferenceStorage storage = ReferenceStorage.create();

    private Guard.Builder<Msg> builder() {
        return Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(Msg::user)
                .chatId(Msg::chat)
                .throttle("per-chat", KeyBy.CHAT, 1, Duration.ofMinutes(1));
    }

    /** The one-filter guard (its own path) and a chain with the same throttle. */
    private Guard<Msg> single() {
        return builder().build();
    }

    private Guard<Msg> chain() {
        return builder()
                .tokenBucket("per-user", KeyBy.USER, 100, 100, Duration.ofSeconds(1))
                .build();
    }

    private boolean allowed(Guard<Msg> guard, Object user, Object chat) {
        return guard.check(new Msg(user, chat, "hi " + ticker.epochMicros())).allowed();
    }

    @Test
    void aPrivateChatsThrottle_isUnderItsUser_onBothPaths() {
        for (Guard<Msg> guard : List.of(single(), chain())) {
            storage.forget("u:7");
            assertThat(allowed(guard, 7L, 7L)).isTrue();
            assertThat(allowed(guard, 7L, 7L))
                    .as("the throttle's one message a minute")
                    .isFalse();
            assertThat(storage.forget("c:7"))
                    .as("nothing under the chat's subject")
                    .isZero();
            assertThat(guard.forgetUser(7L)).isPositive();
            assertThat(allowed(guard, 7L, 7L)).as("forgotten with the user").isTrue();
        }
    }

    @Test
    void theTwoPaths_countAPrivateChatOnOneKey() {
        Guard<Msg> single = single();
        Guard<Msg> chain = chain();
        assertThat(allowed(single, 7L, 7L)).isTrue();
        assertThat(allowed(chain, 7L, 7L))
                .as("the chain meets the one-filter guard's count")
                .isFalse();
        assertThat(allowed(chain, 8L, 8L)).isTrue();
        assertThat(allowed(single, 8L, 8L)).as("and the other way round").isFalse();
    }

    @Test
    void anIdGivenAsText_isTheSameId() {
        for (Guard<Msg> guard : List.of(single(), chain())) {
            assertThat(allowed(guard, "9", 9L)).isTrue();
            assertThat(allowed(guard, 9, "9")).isFalse();
            assertThat(storage.forget("c:9")).isZero();
            assertThat(storage.forget("u:9")).isPositive();
        }
    }

    @Test
    void aGroupsThrottle_staysTheChats_andForgettingAUserLeavesIt() {
        for (Guard<Msg> guard : List.of(single(), chain())) {
            storage.forget("c:-100");
            assertThat(allowed(guard, 7L, -100L)).isTrue();
            assertThat(allowed(guard, 8L, -100L))
                    .as("one message a minute in the group")
                    .isFalse();
            guard.forgetUser(7L);
            assertThat(allowed(guard, 9L, -100L))
                    .as("the group's count is not the user's")
                    .isFalse();
            assertThat(storage.forget("c:-100")).isPositive();
        }
    }

    @Test
    void aSetKeyedByChat_staysUnderTheChat_inAPrivateChatToo() {
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(Msg::user)
                .chatId(Msg::chat)
                .limit("muted", KeyBy.CHAT, Membership.MUST_BE_ABSENT)
                .tokenBucket("per-user", KeyBy.USER, 100, 100, Duration.ofSeconds(1))
                .build();
        guard.members("muted").add(7L);

        assertThat(storage.isMember(new StateKey("set:muted", "c:7"), ticker.epochMicros()))
                .isTrue();
        assertThat(allowed(guard, 7L, 7L))
                .as("the chat administered by its id is muted")
                .isFalse();
        assertThat(allowed(guard, 8L, 8L)).isTrue();
    }
}

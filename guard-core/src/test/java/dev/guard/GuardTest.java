package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GuardTest {
    record Msg(Long user, Long chat, String text, String tenant) {
        static Msg of(long user, long chat, String text) {
            return new Msg(user, chat, text, null);
        }
    }

    /** An id whose text cannot be read: its {@code toString()} throws. */
    static final Object UNREADABLE_ID = new Object() {
        @Override
        public String toString() {
            throw new IllegalStateException("no text for this id");
        }
    };

    /** An id without a text: its {@code toString()} returns null. */
    static final Object TEXTLESS_ID = new Object() {
        @Override
        public String toString() {
            return null;
        }
    };

    final ManualTicker ticker = ManualTicker.create();
    final ReferenceStorage storage = ReferenceStorage.create();

    Guard.Builder<Msg> builder() {
        return Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(Msg::user)
                .chatId(Msg::chat)
                .tenant(Msg::tenant);
    }

    @Test
    void check_tokenBucket_allowsCapacityThenRejectsWithRetryAfter() {
        Guard<Msg> guard = builder()
                .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofSeconds(1))
                .build();

        assertThat(guard.check(Msg.of(1, 10, "a")).remaining()).isEqualTo(1);
        assertThat(guard.check(Msg.of(1, 10, "b")).remaining()).isZero();
        Decision third = guard.check(Msg.of(1, 10, "c"));

        assertThat(third.allowed()).isFalse();
        assertThat(third.filter()).isEqualTo("per-user");
        assertThat(third.reason()).isEqualTo(Reason.RATE_LIMITED);
        assertThat(third.retryAfter()).isEqualTo(Duration.ofSeconds(1));
        assertThat(guard.check(Msg.of(2, 10, "other user")).allowed()).isTrue();

        ticker.advance(Duration.ofSeconds(1));
        assertThat(guard.check(Msg.of(1, 10, "d")).allowed()).isTrue();
    }

    @Test
    void check_calledAgainWhileTheStepsAreBuilt_leavesTheOuterCheckIntact() {
        AtomicReference<Guard<Msg>> self = new AtomicReference<>();
        List<Decision> inner = new ArrayList<>();
        Guard<Msg> guard = builder()
                .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofHours(1))
                .duplicates(Duration.ofSeconds(10), m -> {
                    // A check of another user's message in the middle of building the outer one's steps.
                    if (m.text().equals("nested")) {
                        inner.add(self.get().check(Msg.of(2, 20, "plain")));
                    }
                    return m.text();
                })
                .build();
        self.set(guard);

        Decision outer = guard.check(Msg.of(1, 10, "nested"));

        assertThat(inner).hasSize(1);
        assertThat(inner.get(0).remaining()).isEqualTo(1);
        assertThat(outer.allowed()).isTrue();
        assertThat(outer.remaining()).as("user 1's bucket, not user 2's").isEqualTo(1);
        // The outer check marked its text as seen (its copy nests again, and the inner copy is a duplicate too).
        assertThat(guard.check(Msg.of(1, 10, "nested")).reason()).isEqualTo(Reason.DUPLICATE);
        assertThat(inner.get(1).reason()).isEqualTo(Reason.DUPLICATE);
        // Each first check consumed one token of its own user; the duplicates consumed nothing.
        assertThat(guard.check(Msg.of(1, 10, "next")).remaining()).isZero();
        assertThat(guard.check(Msg.of(2, 20, "next")).remaining()).isZero();
    }

    @Test
    void check_duplicateRejected_consumesNothingInOtherFilters() {
        Guard<Msg> guard = builder()
                .duplicates(Duration.ofSeconds(10), Msg::text)
                .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofHours(1))
                .build();

        Decision first = guard.check(Msg.of(1, 10, "hello"));
        assertThat(first.allowed()).isTrue();
        assertThat(first.remaining())
                .as("the bucket's remainder, not the duplicate check's")
                .isEqualTo(1);
        for (int i = 0; i < 5; i++) {
            Decision copy = guard.check(Msg.of(1, 10, "hello"));
            assertThat(copy.reason()).isEqualTo(Reason.DUPLICATE);
            assertThat(copy.retryAfter()).isEqualTo(Duration.ofSeconds(10));
        }
        // The copies did not eat the bucket: one token is still there.
        assertThat(guard.check(Msg.of(1, 10, "something else")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 10, "third")).reason()).isEqualTo(Reason.RATE_LIMITED);
    }

    @Test
    void check_emptyContent_isNotADuplicate() {
        // A photo without a caption whose text reads as "" rather than null: two different photos are not copies.
        Guard<Msg> guard = builder()
                .duplicates(Duration.ofSeconds(10), Msg::text)
                .duplicates("chat-wave", KeyBy.CHAT, Duration.ofSeconds(10), Msg::text)
                .build();

        assertThat(guard.check(Msg.of(1, 10, "")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 10, "")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(2, 10, "")).allowed()).isTrue();
        // Text is still checked.
        assertThat(guard.check(Msg.of(1, 10, "hi")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 10, "hi")).reason()).isEqualTo(Reason.DUPLICATE);
    }

    @Test
    void check_throttledMessage_isNotRememberedAsSeen() {
        Guard<Msg> guard = builder()
                .duplicates(Duration.ofMinutes(5), Msg::text)
                .throttle("per-chat", KeyBy.CHAT, 1, Duration.ofMinutes(1))
                .build();

        assertThat(guard.check(Msg.of(1, 10, "first")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 10, "second")).reason()).isEqualTo(Reason.THROTTLED);
        ticker.advance(Duration.ofMinutes(1));
        // "second" was throttled, so it was not recorded by the duplicate filter and passes now.
        assertThat(guard.check(Msg.of(1, 10, "second")).allowed()).isTrue();
    }

    @Test
    void check_duplicatesOfOtherUsersOrChats_areNotDuplicates() {
        Guard<Msg> guard =
                builder().duplicates(Duration.ofSeconds(10), Msg::text).build();

        assertThat(guard.check(Msg.of(1, 10, "/start")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(2, 10, "/start")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 11, "/start")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 10, "/start")).reason()).isEqualTo(Reason.DUPLICATE);
        ticker.advance(Duration.ofSeconds(10));
        assertThat(guard.check(Msg.of(1, 10, "/start")).allowed()).isTrue();
    }

    @Test
    void check_conversationDuplicates_rememberTheLastMessagesUpToTheCapacity() {
        Guard<Msg> guard = builder()
                .duplicates("duplicates", KeyBy.CHAT_USER, Duration.ofMinutes(1), 3, Msg::text)
                .build();

        for (String text : new String[] {"a", "b", "c"}) {
            assertThat(guard.check(Msg.of(1, 10, text)).allowed()).isTrue();
            ticker.advance(Duration.ofSeconds(1));
        }
        assertThat(guard.check(Msg.of(1, 10, "a")).reason()).isEqualTo(Reason.DUPLICATE);
        assertThat(guard.check(Msg.of(1, 10, "d")).allowed()).isTrue();
        // Full at three: "d" made the conversation forget "a", the oldest; "b" is still remembered.
        assertThat(guard.check(Msg.of(1, 10, "b")).reason()).isEqualTo(Reason.DUPLICATE);
        assertThat(guard.check(Msg.of(1, 10, "a")).allowed()).isTrue();
    }

    @Test
    void check_chatUserKeys_aUsersPrivateChatAndOtherChats_keepLimitsOfTheirOwn() {
        Guard<Msg> guard = builder()
                .throttle("per-conversation", KeyBy.CHAT_USER, 1, Duration.ofMinutes(1))
                .duplicates(Duration.ofMinutes(5), Msg::text)
                .build();

        // Chat 1 is user 1's private chat (the same id, as on Telegram); chat 10 a group; chat 2 user 2's.
        assertThat(guard.check(Msg.of(1, 1, "hi")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 1, "again")).reason()).isEqualTo(Reason.THROTTLED);
        assertThat(guard.check(Msg.of(1, 10, "hi")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 10, "again")).reason()).isEqualTo(Reason.THROTTLED);
        assertThat(guard.check(Msg.of(2, 1, "hi")).allowed())
                .as("user 2 in chat 1")
                .isTrue();
        assertThat(guard.check(Msg.of(1, 2, "hi")).allowed())
                .as("user 1 in chat 2")
                .isTrue();
        assertThat(guard.check(Msg.of(2, 2, "hi")).allowed())
                .as("user 2's private chat")
                .isTrue();
        ticker.advance(Duration.ofMinutes(1));
        assertThat(guard.check(Msg.of(1, 1, "hi")).reason()).isEqualTo(Reason.DUPLICATE);
        assertThat(guard.check(Msg.of(1, 1, "new")).allowed()).isTrue();
    }

    @Test
    void sameId_userAndChatSubjects_matchOnlyOnTheWholeId() {
        assertThat(Subjects.sameId("u:42", "c:42")).isTrue();
        assertThat(Subjects.sameId("u:42", "c:421")).isFalse();
        assertThat(Subjects.sameId("u:421", "c:42")).isFalse();
        assertThat(Subjects.sameId("u:42", "c:43")).isFalse();
        assertThat(Subjects.sameId("u:-5", "c:-5")).isTrue();
        assertThat(Subjects.sameId(null, "c:42")).isFalse();
        assertThat(Subjects.sameId("u:42", null)).isFalse();
    }

    @Test
    void check_privateChat_isTheUsersIdAsANumberOrAsText_whateverTheIdsTypes() {
        List<StateKey> keys = new ArrayList<>();
        Guard<Object[]> guard = Guard.<Object[]>builder()
                .storage(recordingKeys(keys))
                .ticker(ticker)
                .userId(m -> m[0])
                .chatId(m -> m[1])
                .duplicates(Duration.ofSeconds(10), m -> (String) m[2])
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
                .build();

        guard.check(new Object[] {42L, 42, "hi"});
        guard.check(new Object[] {42L, 43, "hi"});
        // A chat id given as text compares by its subject's text; a message without a chat has no such key.
        guard.check(new Object[] {42L, "42", "text"});
        guard.check(new Object[] {42L, "420", "text"});
        guard.check(new Object[] {42L, null, "none"});
        guard.check(new Object[] {43L, 43L, "hi"});

        assertThat(keys)
                .extracting(StateKey::scope)
                .filteredOn(scope -> scope.startsWith("f:duplicates"))
                .containsExactly(
                        "f:duplicates", "f:duplicates\0c:43", "f:duplicates", "f:duplicates\0c:420", "f:duplicates");
    }

    @Test
    void check_whoseIdExtractorsCheckOtherIds_stillTellsAGroupChatFromAPrivateOne() {
        // Guards of one limit keyed by the user or by the chat, which the outer guard's id extractors check on the same
        // thread: a user's id as a chat's, a chat's numeric id as a user's. Ids met there are not the outer message's.
        Guard<Long> perUser = Guard.<Long>builder()
                .storage(ReferenceStorage.create())
                .ticker(ticker)
                .userId(id -> id)
                .tokenBucket("per-user", KeyBy.USER, 1_000, 1, Duration.ofSeconds(1))
                .build();
        Guard<Long> perChat = Guard.<Long>builder()
                .storage(ReferenceStorage.create())
                .ticker(ticker)
                .chatId(id -> id)
                .tokenBucket("per-chat", KeyBy.CHAT, 1_000, 1, Duration.ofSeconds(1))
                .build();
        List<StateKey> keys = new ArrayList<>();
        Guard<Object[]> guard = Guard.<Object[]>builder()
                .storage(recordingKeys(keys))
                .ticker(ticker)
                .userId(m -> {
                    perChat.check((Long) m[0]);
                    return m[0];
                })
                .chatId(m -> {
                    if (m[1] instanceof Long chat) {
                        perUser.check(chat);
                    }
                    return m[1];
                })
                .duplicates(Duration.ofSeconds(10), m -> (String) m[2])
                .build();

        // A user in a group chat, in a group chat whose id is given as text, and in the private chat.
        guard.check(new Object[] {42L, -100L, "hi"});
        guard.check(new Object[] {42L, "-100", "text"});
        guard.check(new Object[] {42L, 42L, "private"});

        assertThat(keys)
                .extracting(StateKey::scope)
                .containsExactly("f:duplicates\0c:-100", "f:duplicates\0c:-100", "f:duplicates");
    }

    @Test
    void check_inAGroupChat_passesTheSameScopeForTheUserInTheChatMessageAfterMessage() {
        List<StateKey> keys = new ArrayList<>();
        Guard<Msg> guard = builder()
                .storage(recordingKeys(keys))
                .duplicates(Duration.ofSeconds(10), Msg::text)
                .tokenBucket("per-user", KeyBy.USER, 1_000, 1, Duration.ofSeconds(1))
                .build();

        // Enough messages on this thread for the guard to keep its recent subjects (it does after 64).
        for (int i = 0; i < 100; i++) {
            guard.check(Msg.of(7, -100, "message " + i));
        }
        guard.check(Msg.of(7, -200, "elsewhere"));

        List<String> scopes = keys.stream()
                .map(StateKey::scope)
                .filter(scope -> scope.startsWith("f:duplicates"))
                .toList();
        assertThat(scopes).hasSize(101);
        assertThat(scopes.subList(0, 100)).containsOnly("f:duplicates\0c:-100");
        assertThat(scopes.get(99)).isSameAs(scopes.get(98));
        assertThat(scopes.get(100)).isEqualTo("f:duplicates\0c:-200");
    }

    @Test
    void registrations_andTheRegistrationStep_nameTheSetWithOneScopeInstance() {
        List<StateKey> keys = new ArrayList<>();
        Guard<Msg> guard =
                builder().storage(recordingKeys(keys)).requireRegistration().build();

        guard.registrations().add(7L);
        guard.check(Msg.of(7, 7, "hi"));

        assertThat(keys).hasSize(2);
        // Equal texts in any case; one instance, so that a storage comparing scopes by identity first finds it so.
        assertThat(keys.get(1).scope()).isSameAs(keys.get(0).scope());
    }

    /** A reference storage that records the key of every member added and of every step evaluated, in order. */
    private ForwardingStorage recordingKeys(List<StateKey> keys) {
        return new ForwardingStorage(storage) {
            @Override
            public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
                keys.add(key);
                super.addMember(key, expiresAtMicros, nowMicros);
            }

            @Override
            public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
                for (int i = 0; i < buffer.size(); i++) {
                    keys.add(new StateKey(buffer.scope(i), buffer.subject(i)));
                }
                return super.evaluateInPlace(buffer, nowMicros);
            }

            @Override
            public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
                keys.add(key);
                return super.acquire(key, spec, permits, nowMicros);
            }
        };
    }

    @Test
    void check_chatWideDuplicates_catchEveryCopyInTheWindowHoweverBusyTheChat() {
        Guard<Msg> guard = builder()
                .duplicates("spam-wave", KeyBy.CHAT, Duration.ofMinutes(1), Msg::text)
                .build();

        assertThat(guard.check(Msg.of(1, 10, "buy now")).allowed()).isTrue();
        for (int user = 2; user < 2 + 2 * Guard.Builder.DEFAULT_DUPLICATE_CAPACITY; user++) {
            ticker.advance(Duration.ofMillis(100));
            assertThat(guard.check(Msg.of(user, 10, "message of " + user)).allowed())
                    .isTrue();
        }
        Decision copy = guard.check(Msg.of(99, 10, "buy now"));
        assertThat(copy.reason()).isEqualTo(Reason.DUPLICATE);
        assertThat(copy.retryAfter()).isEqualTo(Duration.ofMinutes(1).minusMillis(6_400));
        assertThat(guard.check(Msg.of(99, 11, "buy now")).allowed())
                .as("another chat")
                .isTrue();
    }

    @Test
    void build_duplicateWindowThroughLimit_isRefusedBecauseItNeedsTheContent() {
        assertThatThrownBy(() -> builder().limit("dups", KeyBy.USER, new DuplicateWindow(Duration.ofSeconds(5), 4)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("duplicates(")
                .hasMessageContaining("DuplicateWindow[window=PT5S, capacity=4]");
        assertThatThrownBy(() -> builder().duplicates("dups", KeyBy.CHAT_USER, Duration.ofSeconds(5), 0, Msg::text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("capacity")
                .hasMessageContaining("0");
    }

    @Test
    void check_blockedUser_isRejectedUntilTheBlockExpires() {
        Guard<Msg> guard = builder().blocklist().build();
        guard.blocklist().add(7L, Duration.ofMinutes(30));

        Decision blocked = guard.check(Msg.of(7, 10, "hi"));
        assertThat(blocked.reason()).isEqualTo(Reason.BLOCKED);
        assertThat(blocked.filter()).isEqualTo("blocklist");
        assertThat(blocked.retryAfter()).isEqualTo(Duration.ofMinutes(30));
        assertThat(guard.check(Msg.of(8, 10, "hi")).allowed()).isTrue();

        ticker.advance(Duration.ofMinutes(30));
        assertThat(guard.check(Msg.of(7, 10, "hi")).allowed()).isTrue();
    }

    @Test
    void blockAndPause_onAClockBefore1970_lastTheirDurationNotForEver() {
        // A test's clock may start anywhere; an hour before 1970 the deadline is a negative number of microseconds.
        Guard<Msg> guard = builder().blocklist().gate("paused", KeyBy.CHAT).build();
        ticker.set(Instant.parse("1969-12-31T23:00:00Z"));
        guard.blocklist().add(7L, Duration.ofMinutes(30));
        assertThat(guard.pause("paused", 10L, Duration.ofMinutes(20))).isEqualTo(Instant.parse("1969-12-31T23:20:00Z"));

        assertThat(guard.check(Msg.of(7, 11, "hi")).retryAfter()).isEqualTo(Duration.ofMinutes(30));
        assertThat(guard.check(Msg.of(8, 10, "hi")).retryAfter()).isEqualTo(Duration.ofMinutes(20));
        ticker.advance(Duration.ofMinutes(30));
        assertThat(guard.check(Msg.of(7, 10, "hi")).allowed()).isTrue();
    }

    @Test
    void blockAndPause_longerThanALongOfMicros_onAClockBefore1970_lastForEver() {
        // A duration past 2^63 microseconds ends after every deadline a long can hold: never, whatever the clock.
        Guard<Msg> guard = builder().blocklist().gate("paused", KeyBy.CHAT).build();
        ticker.set(Instant.parse("1969-12-31T23:00:00Z"));
        Duration forever = Duration.ofSeconds(Long.MAX_VALUE);
        guard.blocklist().add(7L, forever);
        Instant never = Instant.ofEpochSecond(Long.MAX_VALUE / 1_000_000L, Long.MAX_VALUE % 1_000_000L * 1_000L);
        assertThat(guard.pause("paused", 10L, forever)).isEqualTo(never);

        Decision blocked = guard.check(Msg.of(7, 11, "hi"));
        assertThat(blocked.retryAfter()).isEqualTo(Decision.NEVER);
        assertThat(blocked.retryable()).isFalse();
        assertThat(guard.check(Msg.of(8, 10, "hi")).allowed()).isFalse();
    }

    @Test
    void check_permanentBlock_isNotRetryableAndCanBeLifted() {
        Guard<Msg> guard = builder().blocklist().build();
        guard.blocklist().add(7L);

        Decision blocked = guard.check(Msg.of(7, 10, "hi"));
        assertThat(blocked.retryable()).isFalse();
        assertThat(blocked.retryAfter()).isEqualTo(Decision.NEVER);
        assertThat(guard.blocklist().contains(7L)).isTrue();
        assertThat(guard.blocklist().remove(7L)).isTrue();
        assertThat(guard.check(Msg.of(7, 10, "hi")).allowed()).isTrue();
    }

    @Test
    void blocklistAdd_forLessThanAMicrosecond_isRefusedNamingTheDuration() {
        Guard<Msg> guard = builder().blocklist().build();

        assertThatThrownBy(() -> guard.blocklist().add(7L, Duration.ofNanos(500)))
                .hasMessage("duration must be at least 1 microsecond but was PT0.0000005S");
        assertThat(guard.blocklist().contains(7L)).isFalse();
        guard.blocklist().add(7L, Duration.ofNanos(1_000));
        assertThat(guard.blocklist().contains(7L)).isTrue();
    }

    @Test
    void check_requiredRegistration_rejectsStrangersUntilRegistered() {
        Guard<Msg> guard = builder().requireRegistration().build();

        assertThat(guard.check(Msg.of(5, 10, "hi")).reason()).isEqualTo(Reason.UNREGISTERED);
        guard.registrations().add(5L);
        assertThat(guard.check(Msg.of(5, 10, "hi")).allowed()).isTrue();
    }

    @Test
    void check_localRegistry_rejectsWithUnregistered() {
        Guard<Msg> guard = builder().requireRegistration(m -> m.user() < 100).build();

        assertThat(guard.check(Msg.of(5, 10, "hi")).allowed()).isTrue();
        Decision stranger = guard.check(Msg.of(500, 10, "hi"));
        assertThat(stranger.reason()).isEqualTo(Reason.UNREGISTERED);
        assertThat(stranger.filter()).isEqualTo("registration");
    }

    @Test
    void check_customFilters_runInOrderBeforeStatefulOnes() {
        List<String> calls = new ArrayList<>();
        Guard<Msg> guard = builder()
                .tokenBucket("bucket", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .filter("first", m -> calls.add("first"))
                .filter("no-links", m -> {
                    calls.add("no-links");
                    return !m.text().contains("http");
                })
                .filter("never-reached", m -> calls.add("never-reached"))
                .build();

        Decision decision = guard.check(Msg.of(1, 10, "see http://x"));

        assertThat(decision.reason()).isEqualTo(Reason.CUSTOM);
        assertThat(decision.filter()).isEqualTo("no-links");
        assertThat(calls).containsExactly("first", "no-links");
        // The bucket was not touched by the rejected message.
        assertThat(guard.check(Msg.of(1, 10, "plain")).allowed()).isTrue();
    }

    @Test
    void check_filterThatThrows_rejectsInsteadOfThrowing() {
        Guard<Msg> guard = builder()
                .filter("broken", m -> {
                    throw new IllegalStateException("boom");
                })
                .build();

        Decision decision = guard.check(Msg.of(1, 10, "x"));
        assertThat(decision.rejected()).isTrue();
        assertThat(decision.filter()).isEqualTo("broken");
    }

    @Test
    void check_severalRejectingSteps_reportsTheFirstAndTheLongestWait() {
        Guard<Msg> guard = builder()
                .throttle("short", KeyBy.USER, 1, Duration.ofSeconds(10))
                .throttle("long", KeyBy.CHAT, 1, Duration.ofMinutes(10))
                .build();
        ticker.set(java.time.Instant.parse("2026-01-01T00:00:00Z"));
        guard.check(Msg.of(1, 10, "a"));

        Decision decision = guard.check(Msg.of(1, 10, "b"));

        assertThat(decision.filter()).isEqualTo("short");
        assertThat(decision.retryAfter()).isEqualTo(Duration.ofMinutes(10));
    }

    @Test
    void scope_givesEachHandlerItsOwnLimitsButSharesTheBlocklist() {
        Guard<Msg> guard = builder()
                .blocklist()
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .build();
        Guard<Msg> search = guard.scope("search");
        Guard<Msg> start = guard.scope("start");

        assertThat(search.check(Msg.of(1, 10, "a")).allowed()).isTrue();
        assertThat(search.check(Msg.of(1, 10, "b")).reason()).isEqualTo(Reason.THROTTLED);
        assertThat(start.check(Msg.of(1, 10, "c")).allowed()).isTrue();

        guard.blocklist().add(1L);
        assertThat(start.check(Msg.of(1, 10, "d")).reason()).isEqualTo(Reason.BLOCKED);
    }

    @Test
    void scope_ofAScope_keepsItsOwnLimits_apartFromTheSameNameUnderAnotherScope() {
        Guard<Msg> guard = builder()
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .build();
        Guard<Msg> adminBan = guard.scope("admin").scope("ban");
        Guard<Msg> userBan = guard.scope("user").scope("ban");

        assertThat(adminBan.check(Msg.of(1, 10, "a")).allowed()).isTrue();
        assertThat(userBan.check(Msg.of(1, 10, "b")).allowed()).isTrue();
        assertThat(guard.scope("ban").check(Msg.of(1, 10, "c")).allowed()).isTrue();
        assertThat(adminBan.check(Msg.of(1, 10, "d")).reason()).isEqualTo(Reason.THROTTLED);
    }

    @Test
    void tenant_keepsLimitsAndBlocklistsApart() {
        Guard<Msg> guard = builder()
                .blocklist()
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .build();

        assertThat(guard.check(new Msg(1L, 10L, "a", "acme")).allowed()).isTrue();
        assertThat(guard.check(new Msg(1L, 10L, "a", "globex")).allowed()).isTrue();
        assertThat(guard.check(new Msg(1L, 10L, "b", "acme")).reason()).isEqualTo(Reason.THROTTLED);

        guard.blocklist("globex").add(2L);
        ticker.advance(Duration.ofMinutes(1));
        assertThat(guard.check(new Msg(2L, 10L, "a", "globex")).reason()).isEqualTo(Reason.BLOCKED);
        assertThat(guard.check(new Msg(2L, 10L, "a", "acme")).allowed()).isTrue();
    }

    @Test
    void tenant_thatCannotBeRead_rejectsTheMessage_ratherThanCountingItUnderTheDefaultTenant() {
        // A user blocked in the default tenant, and a tenant extractor that fails for some messages: such a message
        // is not the default tenant's (whose blocklist and limits it would otherwise meet, or escape), nor any other's.
        List<Object> tenants = new ArrayList<>();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(Msg::user)
                .chatId(Msg::chat)
                .tenant(m -> {
                    if ("throws".equals(m.tenant())) {
                        throw new IllegalStateException("tenant header missing");
                    }
                    return "unreadable".equals(m.tenant()) ? UNREADABLE_ID : m.tenant();
                })
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .rejectNotice(Duration.ofMinutes(1), (m, d) -> tenants.add(m.tenant()))
                .build();

        for (String tenant : new String[] {"throws", "unreadable"}) {
            Decision decision = guard.checkAsync(new Msg(1L, 10L, "a", tenant))
                    .toCompletableFuture()
                    .join();
            assertThat(guard.check(new Msg(1L, 10L, "b", tenant)))
                    .as(tenant)
                    .isEqualTo(decision)
                    .isEqualTo(Decision.rejected("tenant", Reason.MISSING_KEY, Decision.NEVER));
        }
        // Nothing was counted under the default tenant, and no notice went out under an unknown one.
        assertThat(guard.check(new Msg(1L, 10L, "c", null)).allowed()).isTrue();
        assertThat(tenants).isEmpty();
    }

    @Test
    void tenant_thatCannotBeRead_getsNoNotice_evenIfItCanBeReadWhenTheNoticeIsDue() {
        // A tenant lookup that fails now and then (every other call here): the message whose tenant could not be read
        // is rejected, and its notice must not go out under the tenant that a second look happens to find.
        AtomicInteger reads = new AtomicInteger();
        List<Decision> notices = new ArrayList<>();
        Guard<Msg> guard = builder()
                .tenant(m -> {
                    if (reads.incrementAndGet() % 2 == 1) {
                        throw new IllegalStateException("tenant lookup timed out");
                    }
                    return m.tenant();
                })
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .rejectNotice(Duration.ofMinutes(1), (m, d) -> notices.add(d))
                .build();
        Decision unreadable = Decision.rejected("tenant", Reason.MISSING_KEY, Decision.NEVER);

        assertThat(guard.check(new Msg(1L, 10L, "a", "acme"))).isEqualTo(unreadable);
        reads.set(0);
        assertThat(guard.checkAsync(new Msg(1L, 10L, "b", "acme"))
                        .toCompletableFuture()
                        .join())
                .isEqualTo(unreadable);

        assertThat(notices).isEmpty();
    }

    @Test
    void rejectNotice_goesUnderTheTenantTheDecisionWasMadeUnder_evenIfTheTenantReadsOtherwiseLater() {
        // A tenant lookup whose answer changes between two reads of one message (a header rewritten, a lookup whose
        // cache turned over): the notice's once-per-window is kept under the tenant that decided, not under another.
        // Message "a" reads as acme, then as globex; message "b" as acme every time.
        Map<String, Deque<String>> answers = Map.of(
                "a", new ArrayDeque<>(List.of("acme", "globex")), "b", new ArrayDeque<>(List.of("acme", "acme")));
        List<Decision> notices = new ArrayList<>();
        Guard<Msg> guard = builder()
                .tenant(m -> {
                    Deque<String> left = answers.get(m.text());
                    return left.size() > 1 ? left.poll() : left.peek();
                })
                .blocklist()
                .rejectNotice(Duration.ofMinutes(1), (m, d) -> notices.add(d))
                .build();
        guard.blocklist("acme").add(1L);

        assertThat(guard.check(new Msg(1L, 10L, "a", "acme")).reason()).isEqualTo(Reason.BLOCKED);
        assertThat(guard.check(new Msg(1L, 10L, "b", "acme")).reason()).isEqualTo(Reason.BLOCKED);

        assertThat(notices).as("one notice in the window of user 1 in acme").hasSize(1);
    }

    @Test
    void check_messageWithoutUser_skipsUserFiltersByDefault() {
        Guard<Msg> guard = builder()
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .throttle("per-chat", KeyBy.CHAT, 2, Duration.ofHours(1))
                .build();
        Msg channelPost = new Msg(null, 10L, "post", null);

        assertThat(guard.check(channelPost).allowed()).isTrue();
        assertThat(guard.check(channelPost).allowed()).isTrue();
        // The chat's throttle still applies.
        assertThat(guard.check(channelPost).filter()).isEqualTo("per-chat");
    }

    @Test
    void check_messageWithoutUser_isRejectedWhenThePolicySaysSo() {
        Guard<Msg> guard = builder()
                .missingKeys(MissingKeyPolicy.REJECT)
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .build();

        Decision decision = guard.check(new Msg(null, 10L, "post", null));

        assertThat(decision.reason()).isEqualTo(Reason.MISSING_KEY);
        assertThat(decision.filter()).isEqualTo("per-user");
    }

    @Test
    void check_customKey_limitsPerExtractedValue() {
        Guard<Msg> guard = builder()
                .limit(
                        "per-command",
                        m -> m.text().split(" ")[0],
                        new SlidingWindowCounter(2, Duration.ofSeconds(10), 10))
                .build();

        assertThat(guard.check(Msg.of(1, 1, "/search a")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(2, 2, "/search b")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(3, 3, "/search c")).reason()).isEqualTo(Reason.RATE_LIMITED);
        assertThat(guard.check(Msg.of(3, 3, "/start")).allowed()).isTrue();
    }

    @Test
    void rejectNotice_isSentAtMostOncePerWindowPerUser() {
        List<Decision> notices = new ArrayList<>();
        AtomicInteger rejections = new AtomicInteger();
        Guard<Msg> guard = builder()
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .onReject((m, d) -> rejections.incrementAndGet())
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> notices.add(d))
                .build();

        for (int i = 0; i < 10; i++) {
            guard.check(Msg.of(1, 10, "flood " + i));
        }
        assertThat(rejections).hasValue(9);
        assertThat(notices).hasSize(1);
        assertThat(notices.get(0).retryAfter()).isEqualTo(Duration.ofMinutes(1));

        ticker.advance(Duration.ofSeconds(30));
        guard.check(Msg.of(1, 10, "again"));
        assertThat(notices).hasSize(2);
    }

    @Test
    void members_fillTheSetOfAMembershipFilter_byUserOrByChat_perTenant_sharedByHandlerScopes() {
        Guard<Msg> guard = builder()
                .limit("admins", KeyBy.USER, Membership.MUST_BE_PRESENT)
                .limit("muted", KeyBy.CHAT, Membership.MUST_BE_ABSENT)
                .build();
        // Before anyone is added, the allowlist lets nobody through.
        Decision nobody = guard.check(Msg.of(7, 10, "hi"));
        assertThat(nobody.filter()).isEqualTo("admins");
        assertThat(nobody.reason()).isEqualTo(Reason.UNREGISTERED);

        guard.members("admins").add(7L);
        guard.members("muted").add(11L, Duration.ofMinutes(30));
        assertThat(guard.check(Msg.of(7, 10, "hi")).allowed()).isTrue();
        assertThat(guard.scope("search").check(Msg.of(7, 10, "hi")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(8, 10, "hi")).reason()).isEqualTo(Reason.UNREGISTERED);
        Decision muted = guard.check(Msg.of(7, 11, "hi"));
        assertThat(muted.filter()).isEqualTo("muted");
        assertThat(muted.reason()).isEqualTo(Reason.BLOCKED);
        assertThat(muted.retryAfter()).isEqualTo(Duration.ofMinutes(30));
        // The chat's id, not a user's: user 11 in chat 10 is not muted.
        assertThat(guard.check(Msg.of(11, 10, "hi")).reason()).isEqualTo(Reason.UNREGISTERED);
        assertThat(guard.members("muted").contains(11L)).isTrue();
        assertThat(guard.members("muted").contains(7L)).isFalse();

        // A tenant's set is its own.
        assertThat(guard.check(new Msg(7L, 10L, "hi", "acme")).reason()).isEqualTo(Reason.UNREGISTERED);
        guard.members("acme", "admins").add(7L);
        assertThat(guard.check(new Msg(7L, 10L, "hi", "acme")).allowed()).isTrue();

        assertThat(guard.members("admins").remove(7L)).isTrue();
        assertThat(guard.check(Msg.of(7, 10, "hi")).reason()).isEqualTo(Reason.UNREGISTERED);
    }

    @Test
    void members_ofAFilterThatIsNoMembership_orOfOneKeyedByChatAndUser_areRefusedNamingIt() {
        Guard<Msg> guard = builder()
                .limit("admins", KeyBy.USER, Membership.MUST_BE_PRESENT)
                .throttle("per-chat", KeyBy.CHAT, 20, Duration.ofMinutes(1))
                .build();
        assertThatThrownBy(() -> guard.members("per-chat"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("there is no membership filter named 'per-chat'");
        assertThatThrownBy(() -> guard.members("nope"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("there is no membership filter named 'nope'");
        assertThatThrownBy(() -> builder().limit("pairs", KeyBy.CHAT_USER, Membership.MUST_BE_ABSENT))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("key of membership filter 'pairs' must not be CHAT_USER");
    }

    @Test
    void membershipFilter_namedAsTheBlocklistOrTheRegistrations_isRefused_sinceItWouldShareTheirSet() {
        // A set of one's own keeps its members under "set:" + its name, as the blocklist and the registrations do:
        // under their names it would be their set, and registrations().add(7) would put user 7 on a list of muted
        // users named "registered" (or members("blocklist").add(7) block user 7 in every guard with blocklist()).
        assertThatThrownBy(() -> builder().limit("registered", KeyBy.USER, Membership.MUST_BE_ABSENT))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("membership filter name must not be 'registered', the name of the registrations' set"
                        + " (requireRegistration(), guard.registrations()), but was 'registered'");
        assertThatThrownBy(() -> builder().limit("blocklist", Msg::user, Membership.MUST_BE_PRESENT))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("membership filter name must not be 'blocklist', the name of the blocklist's set"
                        + " (blocklist(), guard.blocklist()), but was 'blocklist'");
        // Other kinds of filter keep keys of their own under those names.
        Guard<Msg> guard = builder()
                .requireRegistration()
                .throttle("blocklist", KeyBy.USER, 1, Duration.ofMinutes(1))
                .build();
        guard.registrations().add(1L);
        assertThat(guard.check(Msg.of(1, 10, "a")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(1, 10, "b")).filter()).isEqualTo("blocklist");
    }

    @Test
    void pause_ofATenant_closesTheGateForThatTenantOnly() {
        Guard<Msg> guard = builder().gate("mod", KeyBy.USER).build();

        guard.pause("acme", "mod", 42L, Duration.ofHours(1));

        assertThat(guard.check(new Msg(42L, 1L, "x", "acme")).reason()).isEqualTo(Reason.COOLDOWN);
        assertThat(guard.check(new Msg(42L, 1L, "x", "other")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(42, 1, "x")).allowed()).isTrue();
        guard.pause("mod", 42L, Duration.ofHours(1));
        assertThat(guard.check(Msg.of(42, 1, "y")).reason()).isEqualTo(Reason.COOLDOWN);
    }

    @Test
    void aGateAddedAsALimit_isSharedByHandlerScopes_soPauseClosesItForEveryHandler() {
        Guard<Msg> guard = builder().limit("mod", KeyBy.USER, Gate.INSTANCE).build();

        guard.pause("mod", 42L, Duration.ofHours(1));

        assertThat(guard.check(Msg.of(42, 1, "x")).reason()).isEqualTo(Reason.COOLDOWN);
        assertThat(guard.scope("search").check(Msg.of(42, 1, "y")).reason()).isEqualTo(Reason.COOLDOWN);
    }

    @Test
    void aGateWithACustomKey_isClosedByPauseWithTheKeysValue() {
        Guard<Msg> guard = builder().limit("per-text", Msg::text, Gate.INSTANCE).build();

        guard.pause("per-text", "spam", Duration.ofHours(1));

        assertThat(guard.check(Msg.of(1, 1, "spam")).reason()).isEqualTo(Reason.COOLDOWN);
        assertThat(guard.check(Msg.of(1, 1, "ham")).allowed()).isTrue();
    }

    @Test
    void pause_closesTheGateForExactlyTheDurationAndMergesByMaximum() {
        Guard<Msg> guard = builder().gate("paused", KeyBy.CHAT).build();

        guard.pause("paused", 10L, Duration.ofSeconds(20));
        guard.pause("paused", 10L, Duration.ofSeconds(5));

        Decision decision = guard.check(Msg.of(1, 10, "x"));
        assertThat(decision.reason()).isEqualTo(Reason.COOLDOWN);
        assertThat(decision.retryAfter()).isEqualTo(Duration.ofSeconds(20));
        assertThat(guard.check(Msg.of(1, 11, "x")).allowed()).isTrue();
        ticker.advance(Duration.ofSeconds(20));
        assertThat(guard.check(Msg.of(1, 10, "x")).allowed()).isTrue();
    }

    @Test
    void pause_forEver_rejectsWithRetryAfterNever_asAPermanentBlockDoes() {
        Guard<Msg> guard = builder().gate("paused", KeyBy.CHAT).build();

        guard.pause("paused", 10L, ChronoUnit.FOREVER.getDuration());

        Decision decision = guard.check(Msg.of(1, 10, "x"));
        assertThat(decision.reason()).isEqualTo(Reason.COOLDOWN);
        assertThat(decision.retryAfter()).isEqualTo(Decision.NEVER);
        assertThat(decision.retryable()).isFalse();
        // A long but finite pause still says how long.
        guard.pause("paused", 11L, Duration.ofDays(365 * 100));
        assertThat(guard.check(Msg.of(1, 11, "x")).retryAfter()).isEqualTo(Duration.ofDays(365 * 100));
    }

    @Test
    void forgetUser_removesTheUsersState() {
        Guard<Msg> guard = builder()
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .duplicates(Duration.ofHours(1), Msg::text)
                .build();
        guard.check(Msg.of(1, 10, "a"));
        guard.check(Msg.of(2, 10, "a"));

        assertThat(guard.forgetUser(1L)).isEqualTo(2);
        assertThat(guard.check(Msg.of(1, 10, "a")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(2, 10, "b")).reason()).isEqualTo(Reason.RATE_LIMITED);
    }

    @Test
    void forgetKey_removesTheStateOfACustomKey_whichForgetUserCannotFind() {
        // A mute per user in one chat, keyed as the gate's refusal of CHAT_USER suggests: the key is the user's, but
        // only its text says so.
        Guard<Msg> guard = builder()
                .limit("mute", m -> m.chat() + "/" + m.user(), Gate.INSTANCE)
                .limit("per-command", m -> m.text(), new SlidingWindowCounter(1, Duration.ofHours(1), 10))
                .build();
        guard.pause("mute", "10/1", Duration.ofHours(1));
        guard.pause("acme", "mute", "10/1", Duration.ofHours(1));
        guard.pause("mute", "10/2", Duration.ofHours(1));
        assertThat(guard.check(Msg.of(3, 10, "/start")).allowed()).isTrue();

        assertThat(guard.forgetUser(1L)).isZero();
        assertThat(guard.forgetKey("10/1")).as("the mute, in both tenants").isEqualTo(2);

        assertThat(guard.check(Msg.of(1, 10, "/search")).allowed()).isTrue();
        assertThat(guard.check(new Msg(1L, 10L, "/help", "acme")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(2, 10, "/about")).reason()).isEqualTo(Reason.COOLDOWN);
        assertThat(guard.check(Msg.of(4, 10, "/start")).reason()).isEqualTo(Reason.RATE_LIMITED);
        assertThatThrownBy(() -> guard.forgetKey(null)).hasMessage("key must not be null");
    }

    @Test
    void forgetUser_andTheSets_refuseANullUserNamingIt() {
        Guard<Msg> guard = builder().blocklist().build();

        assertThatThrownBy(() -> guard.forgetUser(null)).hasMessage("userId must not be null");
        assertThatThrownBy(() -> guard.blocklist().add(null)).hasMessage("userId must not be null");
        assertThatThrownBy(() -> guard.registrations().contains(null)).hasMessage("userId must not be null");
    }

    @Test
    void members_refuseANullOrTextlessId_namingItAsTheSetIsKeyed() {
        // A set's ids are what its filter is keyed by: a set of muted chats said "userId" for a chat id.
        Object textless = TEXTLESS_ID;
        Guard<Msg> guard = builder()
                .limit("admins", KeyBy.USER, Membership.MUST_BE_PRESENT)
                .limit("muted", KeyBy.CHAT, Membership.MUST_BE_ABSENT)
                .limit("pairs", m -> m.chat() + "/" + m.user(), Membership.MUST_BE_ABSENT)
                .limit("closed", KeyBy.GLOBAL, Membership.MUST_BE_ABSENT)
                .build();

        assertThatThrownBy(() -> guard.members("muted").add(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("chatId must not be null");
        assertThatThrownBy(() -> guard.members("acme", "muted").contains(textless))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("chatId must have a text but its toString() returned null");
        assertThatThrownBy(() -> guard.members("muted").remove(UNREADABLE_ID))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("chatId must have a text but its toString() threw"
                        + " java.lang.IllegalStateException: no text for this id");
        assertThatThrownBy(() -> guard.members("admins").add(textless, Duration.ofHours(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("userId must have a text but its toString() returned null");
        assertThatThrownBy(() -> guard.members("admins").remove(null)).hasMessage("userId must not be null");
        assertThatThrownBy(() -> guard.members("pairs").add(null)).hasMessage("id must not be null");
        assertThatThrownBy(() -> guard.members("closed").contains(null)).hasMessage("id must not be null");
        assertThat(guard.members("closed").contains(textless))
                .as("any id stands for the one global key, a textless one too")
                .isFalse();
    }

    @Test
    void setsPauseAndForget_ofAnIdWithoutText_areRefusedNamingIt_ratherThanActingOnTheIdNull() {
        // A message whose id has no text (toString() returns null or throws) has no such id; the administration calls
        // took String.valueOf of it, "null", which is the text of another id: the user whose id is the string "null".
        Object textless = TEXTLESS_ID;
        Guard<Object> guard = Guard.<Object>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(id -> id)
                .blocklist()
                .gate("mod", KeyBy.USER)
                .limit("muted", id -> id, Membership.MUST_BE_ABSENT)
                .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofHours(1))
                .build();
        assertThat(guard.check("null").remaining()).isEqualTo(1);

        assertThatThrownBy(() -> guard.blocklist().add(textless))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("userId must have a text but its toString() returned null");
        assertThatThrownBy(() -> guard.members("muted").add(textless))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("id must have a text but its toString() returned null");
        assertThatThrownBy(() -> guard.pause("mod", textless, Duration.ofHours(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("id must have a text but its toString() returned null");
        assertThatThrownBy(() -> guard.forgetUser(textless))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("userId must have a text but its toString() returned null");
        assertThatThrownBy(() -> guard.registrations().contains(UNREADABLE_ID))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("userId must have a text but its toString() threw"
                        + " java.lang.IllegalStateException: no text for this id")
                .hasCauseInstanceOf(IllegalStateException.class);
        // The user "null" was neither blocked, paused, put on the set nor forgotten.
        assertThat(guard.check("null").remaining()).isZero();
    }

    @Test
    void setsPauseAndForget_ofAnIdWhoseToStringThrowsABareThrowable_areRefusedNamingIt_asTheMessagePathSkipsIt() {
        // Kotlin code may throw a Throwable that is neither an exception nor an error: the message path reads such an
        // id as none; the administration calls refuse it by name, as for any exception, rather than letting it out.
        Object textless = new Object() {
            @Override
            public String toString() {
                throw sneaky(new Throwable("no text"));
            }
        };
        Guard<Object> guard = Guard.<Object>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(id -> id)
                .blocklist()
                .gate("mod", KeyBy.USER)
                .build();
        assertThat(guard.check(textless).allowed())
                .as("no user id: the filters do not apply")
                .isTrue();

        assertThatThrownBy(() -> guard.blocklist().add(textless))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("userId must have a text but its toString() threw java.lang.Throwable: no text");
        assertThatThrownBy(() -> guard.pause("mod", textless, Duration.ofHours(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("id must have a text but its toString() threw java.lang.Throwable: no text");
        assertThatThrownBy(() -> guard.forgetKey(textless))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("key must have a text but its toString() threw java.lang.Throwable: no text");
    }

    @Test
    void check_idsOfAnyTypeWithTheSameText_shareOneState() {
        // Long ids take a shortcut into the key; it must name the same key as the id's text, which pause, forget,
        // the blocklist and other processes (with ids of another type) use.
        Guard<Object> guard = Guard.<Object>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(id -> id)
                .blocklist()
                .tokenBucket("per-user", KeyBy.USER, 3, 1, Duration.ofHours(1))
                .build();

        assertThat(guard.check(42L).remaining()).isEqualTo(2);
        assertThat(guard.check(42).remaining()).isEqualTo(1);
        assertThat(guard.check("42").remaining()).isZero();
        guard.blocklist().add(-7);
        assertThat(guard.check(-7L).reason()).isEqualTo(Reason.BLOCKED);
        assertThat(guard.forgetUser("42")).isEqualTo(1);
        assertThat(guard.check(42L).remaining()).isEqualTo(2);
    }

    @Test
    void check_thousandsOfUsersAndChats_eachKeepTheirOwnState_asTheRecentSubjectsTurnOver() {
        // More users than a thread keeps recent subjects for, so that their ids meet in the same places there; a
        // user's and a chat's subject with the same id never stand in for each other.
        Guard<Msg> guard = builder()
                .throttle("per-user", KeyBy.USER, 1, Duration.ofHours(1))
                .throttle("per-chat", KeyBy.CHAT, 1, Duration.ofHours(1))
                .build();
        int users = 3_000;

        for (int u = 0; u < users; u++) {
            assertThat(guard.check(Msg.of(u, -u - 1, "hi")).allowed())
                    .as("user %d", u)
                    .isTrue();
        }
        for (int u = users - 1; u >= 0; u--) {
            assertThat(guard.check(Msg.of(u, -users - u - 1, "again")).filter())
                    .as("user %d", u)
                    .isEqualTo("per-user");
            assertThat(guard.check(Msg.of(users + u, -u - 1, "other user")).filter())
                    .as("chat %d", -u - 1)
                    .isEqualTo("per-chat");
        }
        // The chat with user 5's id keeps its state when user 5 is forgotten: it is the chat's, not the user's.
        assertThat(guard.check(Msg.of(2 * users, 5, "in chat 5")).allowed()).isTrue();
        assertThat(guard.forgetUser(5L)).isEqualTo(1);
        assertThat(guard.check(Msg.of(2 * users + 1, 5, "in chat 5 too")).filter())
                .isEqualTo("per-chat");
        assertThat(guard.check(Msg.of(5, 3 * users, "user 5, forgotten")).allowed())
                .isTrue();
    }

    @Test
    void wrap_runsTheHandlerOnlyForAllowedMessages() throws Exception {
        List<String> handled = new ArrayList<>();
        Guard<Msg> guard =
                builder().throttle("t", KeyBy.USER, 1, Duration.ofMinutes(1)).build();
        GuardedHandler<Msg> handler = guard.wrap(m -> handled.add(m.text()));

        assertThat(handler.handle(Msg.of(1, 10, "a")).allowed()).isTrue();
        assertThat(handler.handle(Msg.of(1, 10, "b")).allowed()).isFalse();
        assertThat(handled).containsExactly("a");
    }

    @Test
    void checkAsync_decidesLikeCheck() {
        Guard<Msg> guard = builder()
                .duplicates(Duration.ofSeconds(10), Msg::text)
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .build();

        Decision first =
                guard.checkAsync(Msg.of(1, 10, "a")).toCompletableFuture().join();
        Decision dup =
                guard.checkAsync(Msg.of(1, 10, "a")).toCompletableFuture().join();
        Decision limited =
                guard.checkAsync(Msg.of(1, 10, "b")).toCompletableFuture().join();

        assertThat(first.allowed()).isTrue();
        assertThat(dup.reason()).isEqualTo(Reason.DUPLICATE);
        assertThat(limited.reason()).isEqualTo(Reason.RATE_LIMITED);
    }

    @Test
    void listener_seesEveryDecision() {
        List<Reason> seen = new ArrayList<>();
        Guard<Msg> guard = builder()
                .throttle("t", KeyBy.USER, 1, Duration.ofMinutes(1))
                .listener((m, d, nanos) -> {
                    assertThat(nanos).isNotNegative();
                    seen.add(d.reason());
                })
                .build();

        guard.check(Msg.of(1, 10, "a"));
        guard.check(Msg.of(1, 10, "b"));

        assertThat(seen).containsExactly(Reason.ALLOWED, Reason.THROTTLED);
    }

    @Test
    void builder_rejectsBadConfigurationNamingFieldAndValue() {
        assertThatThrownBy(() -> builder().throttle("t", KeyBy.USER, 0, Duration.ofMinutes(1)))
                .hasMessage("limit must be positive but was 0");
        assertThatThrownBy(() -> builder()
                        .throttle("t", KeyBy.USER, 1, Duration.ofMinutes(1))
                        .throttle("t", KeyBy.CHAT, 1, Duration.ofMinutes(1)))
                .hasMessage("filter 't' is already configured");
        // The names Guard gives its own decisions (a failing storage, an unreadable tenant) are not for filters.
        assertThatThrownBy(() -> builder().throttle("storage", KeyBy.USER, 1, Duration.ofMinutes(1)))
                .hasMessageStartingWith("filter name must not be 'storage', which Guard gives")
                .hasMessageEndingWith("but was 'storage'");
        assertThatThrownBy(() -> builder().filter("tenant", m -> true)).hasMessageEndingWith("but was 'tenant'");
        assertThatThrownBy(() -> builder().throttle("a\nb", KeyBy.USER, 1, Duration.ofMinutes(1)))
                .hasMessage("filter name must not contain control characters but was 'a\\nb'");
        assertThatThrownBy(() -> builder().throttle(" ", KeyBy.USER, 1, Duration.ofMinutes(1)))
                .hasMessage("filter name must not be blank but was ' '");
        assertThatThrownBy(() -> Guard.<Msg>builder().build()).hasMessageStartingWith("storage must be set");
        assertThatThrownBy(() -> Guard.<Msg>builder()
                        .storage(storage)
                        .throttle("t", KeyBy.USER, 1, Duration.ofMinutes(1))
                        .build())
                .hasMessage("filter 't' is keyed by USER but no userId extractor is set");
        assertThatThrownBy(() -> builder().breaker(0, Duration.ofSeconds(1)))
                .hasMessage("consecutiveFailures must be positive but was 0");
        assertThatThrownBy(() -> builder().duplicates(Duration.ZERO, Msg::text))
                .hasMessage("window must be positive but was PT0S");
        assertThatThrownBy(() -> builder().duplicates(Duration.ofNanos(1), Msg::text))
                .hasMessage("window must be at least 1 microsecond but was PT0.000000001S");
        assertThatThrownBy(() -> builder().breaker(1, Duration.ofNanos(1)))
                .hasMessage("openFor must be at least 1 microsecond but was PT0.000000001S");
        assertThatThrownBy(() -> builder().rejectNotice(Duration.ofNanos(999), (m, d) -> {}))
                .hasMessage("window must be at least 1 microsecond but was PT0.000000999S");
        // A finer part than a microsecond was cut off, and the limit enforced a shorter window than it was given.
        Duration fine = Duration.ofNanos(10_500);
        assertThatThrownBy(() -> builder().rejectNotice(fine, (m, d) -> {}))
                .hasMessage("window must be a whole number of microseconds but was PT0.0000105S");
        for (KeyBy key : KeyBy.values()) {
            assertThatThrownBy(() -> builder().duplicates("copies", key, fine, Msg::text))
                    .as("duplicates by %s", key)
                    .hasMessage("window must be a whole number of microseconds but was PT0.0000105S");
        }
        assertThatThrownBy(() -> builder().duplicates("copies", KeyBy.USER, fine, 4, Msg::text))
                .hasMessage("window must be a whole number of microseconds but was PT0.0000105S");
        assertThatThrownBy(() -> builder().throttle("t", KeyBy.USER, 1, fine))
                .hasMessage("window must be a whole number of microseconds but was PT0.0000105S");
        assertThatThrownBy(() -> builder().slidingWindow("s", KeyBy.USER, 1, fine))
                .hasMessage("window must be a whole number of microseconds but was PT0.0000105S");
        assertThatThrownBy(() -> builder().tokenBucket("b", KeyBy.USER, 1, 1, fine))
                .hasMessage("refillPeriod must be a whole number of microseconds but was PT0.0000105S");
        assertThatThrownBy(() -> builder().cooldown("c", KeyBy.USER, fine))
                .hasMessage("period must be a whole number of microseconds but was PT0.0000105S");
        Duration tooLong = Duration.ofSeconds(1L << 34); // 2^53 microseconds is about 2^33 seconds
        assertThatThrownBy(() -> builder().rejectNotice(tooLong, (m, d) -> {}))
                .hasMessage("window is too long: " + tooLong);
        assertThatThrownBy(() -> builder().duplicates("copies", KeyBy.CHAT, tooLong, Msg::text))
                .hasMessage("window is too long: " + tooLong);
        assertThatThrownBy(() -> builder().build().pause("nope", 1L, Duration.ofSeconds(1)))
                .hasMessage("there is no gate filter named 'nope'");
    }

    /**
     * Throws {@code e} without declaring it, as code in Kotlin or Scala (which have no checked exceptions) throws a
     * bot API's {@link IOException} through Guard's Java interfaces.
     */
    @SuppressWarnings("unchecked")
    private static <E extends Throwable> RuntimeException sneaky(Throwable e) throws E {
        throw (E) e;
    }

    @Test
    void listenersThatThrowCheckedExceptions_areIgnored_andTheDecisionStands() {
        List<Reason> seen = new ArrayList<>();
        AtomicInteger notices = new AtomicInteger();
        Guard<Msg> guard = builder()
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .onReject((m, d) -> {
                    throw sneaky(new IOException("reply failed"));
                })
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> {
                    notices.incrementAndGet();
                    throw sneaky(new IOException("send failed"));
                })
                .listener((m, d, nanos) -> {
                    seen.add(d.reason());
                    throw sneaky(new IOException("metrics down"));
                })
                .listener((m, d, nanos) -> seen.add(d.reason()))
                .build();

        Decision first = guard.check(Msg.of(1, 10, "a"));
        Decision throttled = guard.check(Msg.of(1, 10, "b"));
        Decision async =
                guard.checkAsync(Msg.of(1, 10, "c")).toCompletableFuture().join();

        assertThat(first.allowed()).isTrue();
        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(async.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(notices).as("one notice in the window").hasValue(1);
        // Every listener saw every decision: one that threw did not keep the next from running.
        assertThat(seen)
                .containsExactly(
                        Reason.ALLOWED,
                        Reason.ALLOWED,
                        Reason.THROTTLED,
                        Reason.THROTTLED,
                        Reason.THROTTLED,
                        Reason.THROTTLED);
    }

    @Test
    void idWhoseToStringThrows_countsAsNoId_asAnExtractorThatThrows() {
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(m -> m.user() == 13 ? UNREADABLE_ID : m.user())
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .build();

        Decision noUser = guard.check(Msg.of(13, 10, "hello"));

        assertThat(noUser.allowed()).isTrue();
        assertThat(noUser.remaining()).as("no user: the bucket did not apply").isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void contentWhoseCharactersCannotBeRead_countsAsNoContent_asAContentExtractorThatThrows() {
        // A CharSequence of the bot's framework that fails when read (a lazily decoded text): the duplicates filter
        // reads it for the fingerprint of its key, and a check must decide rather than throw.
        CharSequence unreadable = new CharSequence() {
            @Override
            public int length() {
                return 3;
            }

            @Override
            public char charAt(int index) {
                throw new IllegalStateException("text no longer available");
            }

            @Override
            public CharSequence subSequence(int start, int end) {
                throw new IllegalStateException("text no longer available");
            }
        };
        Guard<Msg> guard = builder()
                .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofHours(1))
                .duplicates(Duration.ofMinutes(1), m -> m.text().equals("lazy") ? unreadable : m.text())
                .build();

        Decision sync = guard.check(Msg.of(1, 10, "lazy"));
        Decision async =
                guard.checkAsync(Msg.of(1, 10, "lazy")).toCompletableFuture().join();

        assertThat(sync.allowed()).isTrue();
        assertThat(sync.remaining()).as("the bucket still applied").isEqualTo(1);
        assertThat(async.allowed()).isTrue();
        assertThat(async.remaining()).isZero();
    }

    @Test
    void missingKeysReject_rejectsBeforeTheStorage_evenWhereAnEarlierStatefulFilterWouldReject() {
        Guard<Msg> guard = builder()
                .missingKeys(MissingKeyPolicy.REJECT)
                .blocklist()
                .throttle("per-chat", KeyBy.CHAT, 5, Duration.ofMinutes(1))
                .build();
        guard.blocklist().add(1L);

        Decision noChat = guard.check(new Msg(1L, null, "hi", null));
        Decision withChat = guard.check(Msg.of(1, 10, "hi"));

        assertThat(noChat.reason()).as("as MissingKeyPolicy.REJECT says").isEqualTo(Reason.MISSING_KEY);
        assertThat(noChat.filter()).isEqualTo("per-chat");
        assertThat(withChat.reason()).isEqualTo(Reason.BLOCKED);
    }

    /** An {@link Error} of a test's own, so that no other failure can pass for it. */
    private static final class FilterError extends Error {
        FilterError() {
            super("filter bug");
        }
    }

    @Test
    void anErrorFromAFilterOrAnExtractor_reachesTheCaller_andConsumesNothing() {
        FilterError error = new FilterError();
        Guard<Msg> guard = builder()
                .filter("buggy", m -> {
                    if (m.text().equals("crash")) {
                        throw error;
                    }
                    return true;
                })
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .build();
        Guard<Msg> buggyIds = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(m -> {
                    throw error;
                })
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .build();

        assertThatThrownBy(() -> guard.check(Msg.of(1, 10, "crash"))).isSameAs(error);
        assertThatThrownBy(() -> buggyIds.check(Msg.of(1, 10, "hello"))).isSameAs(error);
        assertThat(guard.check(Msg.of(1, 10, "hello")).remaining())
                .as("the crashed check took no token")
                .isZero();
    }

    /**
     * A checked exception thrown undeclared, or a bare {@link Throwable} (neither an exception nor an error): what code
     * in Kotlin, which has no checked exceptions, may throw through Guard's Java interfaces.
     */
    private static Throwable userCodeFailure(boolean bare, String message) {
        return bare ? new Throwable(message) : new IOException(message);
    }

    @ParameterizedTest(name = "bare Throwable: {0}")
    @ValueSource(booleans = {false, true})
    void filtersExtractorsAndListenersThatThrowAnythingButAnError_rejectOrCountAsNoIdOrAreIgnored_asTheirJavadocSays(
            boolean bare) {
        List<Reason> seen = new ArrayList<>();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(m -> {
                    if (m.user() == 13) {
                        throw sneaky(userCodeFailure(bare, "profile lookup failed"));
                    }
                    return m.user();
                })
                .chatId(Msg::chat)
                .filter("spam-check", m -> {
                    if (m.text().equals("unreachable")) {
                        throw sneaky(userCodeFailure(bare, "spam service down"));
                    }
                    return true;
                })
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .duplicates("same-text", KeyBy.CHAT, Duration.ofMinutes(1), m -> {
                    if (m.text().equals("unreadable")) {
                        throw sneaky(userCodeFailure(bare, "cannot decode"));
                    }
                    return m.text();
                })
                .onReject((m, d) -> {
                    throw sneaky(userCodeFailure(bare, "reply failed"));
                })
                .listener((m, d, nanos) -> {
                    seen.add(d.reason());
                    throw sneaky(userCodeFailure(bare, "metrics down"));
                })
                .build();

        Decision filtered = guard.check(Msg.of(1, 10, "unreachable"));
        Decision noUser = guard.check(Msg.of(13, 10, "hello"));
        Decision noContent = guard.check(Msg.of(2, 10, "unreadable"));
        Decision asyncFiltered = guard.checkAsync(Msg.of(3, 10, "unreachable"))
                .toCompletableFuture()
                .join();
        Decision asyncNoUser =
                guard.checkAsync(Msg.of(13, 10, "again")).toCompletableFuture().join();

        assertThat(filtered.reason()).isEqualTo(Reason.CUSTOM);
        assertThat(filtered.filter()).isEqualTo("spam-check");
        assertThat(asyncFiltered.filter()).isEqualTo("spam-check");
        assertThat(noUser.allowed()).isTrue();
        assertThat(noUser.remaining()).as("no user: the bucket did not apply").isEqualTo(Long.MAX_VALUE);
        assertThat(asyncNoUser.remaining()).isEqualTo(Long.MAX_VALUE);
        assertThat(noContent.allowed()).isTrue();
        assertThat(noContent.remaining()).as("user 2's bucket still applied").isZero();
        assertThat(seen)
                .as("the listener saw every decision although it threw each time")
                .containsExactly(Reason.CUSTOM, Reason.ALLOWED, Reason.ALLOWED, Reason.CUSTOM, Reason.ALLOWED);
    }

    /**
     * Code of the bot's that was interrupted (a blocking lookup in a filter, a reply sent from a listener) and lets
     * its InterruptedException through undeclared, as Kotlin code does: the guard decides as for any other exception
     * it throws, but throwing it cleared the thread's interrupt status, which the guard must set again so that the
     * bot's worker loop (an executor shut down with shutdownNow) still learns that it was asked to stop.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"filter", "userId", "tenant", "content", "onReject", "rejectNotice", "listener"})
    void userCodeThatThrowsInterruptedException_leavesTheThreadInterrupted_andTheDecisionStands(String where) {
        AtomicReference<String> interruptIn = new AtomicReference<>();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(m -> interrupted(interruptIn, "userId", m.user()))
                .chatId(Msg::chat)
                .tenant(m -> interrupted(interruptIn, "tenant", m.tenant()))
                .filter("spam-check", m -> interrupted(interruptIn, "filter", true))
                .tokenBucket("per-user", KeyBy.USER, 1, 1, Duration.ofHours(1))
                .duplicates(Duration.ofMinutes(1), m -> interrupted(interruptIn, "content", m.text()))
                .onReject((m, d) -> interrupted(interruptIn, "onReject", null))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> interrupted(interruptIn, "rejectNotice", null))
                .listener((m, d, nanos) -> interrupted(interruptIn, "listener", null))
                .build();
        assertThat(guard.check(Msg.of(1, 10, "a")).allowed()).isTrue();

        interruptIn.set(where);
        Decision decision;
        boolean interrupted;
        try {
            decision = guard.check(Msg.of(1, 10, "b")); // the bucket rejects it, unless the user cannot be read
        } finally {
            interrupted = Thread.interrupted(); // clears it: the other tests run on this thread
        }

        assertThat(interrupted).as("the thread is still interrupted").isTrue();
        assertThat(decision.reason())
                .isEqualTo(
                        switch (where) {
                            case "filter" -> Reason.CUSTOM;
                            case "userId" -> Reason.ALLOWED; // no user: the bucket does not apply
                            case "tenant" -> Reason.MISSING_KEY;
                            default -> Reason.RATE_LIMITED;
                        });
    }

    /** {@code value}, or an {@link InterruptedException} thrown undeclared if {@code where} is armed. */
    private static <T> T interrupted(AtomicReference<String> armed, String where, T value) {
        if (where.equals(armed.get())) {
            throw sneaky(new InterruptedException(where + " interrupted"));
        }
        return value;
    }

    @Test
    void gate_keyedByUserInChat_isRefusedWhenConfigured_sincePauseCannotCloseIt() {
        assertThatThrownBy(() -> builder().gate("mute", KeyBy.CHAT_USER))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("key of gate 'mute' must not be CHAT_USER");
        assertThatThrownBy(() -> builder().limit("mute", KeyBy.CHAT_USER, Gate.INSTANCE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("key of gate 'mute' must not be CHAT_USER");
        // What the message suggests: a custom key per user in each chat, which pause closes.
        Guard<Msg> guard = builder()
                .limit("mute", m -> m.chat() + "/" + m.user(), Gate.INSTANCE)
                .build();
        guard.pause("mute", "10/1", Duration.ofMinutes(5));
        assertThat(guard.check(Msg.of(1, 10, "x")).reason()).isEqualTo(Reason.COOLDOWN);
        assertThat(guard.check(Msg.of(1, 11, "x")).allowed()).isTrue();
        assertThat(guard.check(Msg.of(2, 10, "x")).allowed()).isTrue();
    }
}

package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.spi.ReferenceStorage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * How the pool spreads messages over its senders: by health, risk and the capacity it believes is left, without
 * starving a sender for good or sending everything to one of several equally good senders.
 */
class SenderPoolRoutingTest {
    private final ManualTicker ticker = ManualTicker.create();
    private final ReferenceStorage storage = ReferenceStorage.create();
    private int chats;

    private SenderPool pool(SenderPool.Builder b, Sender... senders) {
        for (Sender s : senders) {
            b.sender(s);
        }
        return b.build();
    }

    private SenderPool pool(Sender... senders) {
        return pool(SenderPool.builder(storage).ticker(ticker).random(new Random(7)), senders);
    }

    private OutboundMessage fresh() {
        return OutboundMessage.to("chat-" + chats++);
    }

    /**
     * Acquires {@code count} messages, one every {@code every}, each reported delivered after the latency that
     * {@code latencies} gives its sender; answers the grants per sender.
     */
    private Map<String, Integer> send(SenderPool pool, int count, Duration every, Map<String, Duration> latencies) {
        Map<String, Integer> grants = new HashMap<>();
        for (int i = 0; i < count; i++) {
            SendDecision d = pool.acquire(fresh());
            assertThat(d).isInstanceOf(SendDecision.Granted.class);
            SendDecision.Granted g = (SendDecision.Granted) d;
            grants.merge(g.sender(), 1, Integer::sum);
            g.delivered(latencies.get(g.sender()));
            ticker.advance(every);
        }
        return grants;
    }

    @Test
    void oneSlowDelivery_scoresASenderDown_butItsMarkFades_andTheSenderIsTriedAgain_notStarvedForGood() {
        // Found by a review: latency was the one mark of a report that never faded. A sender whose first delivery
        // was slow (a network blip) lost every comparison, so it got no message, so no delivery measured it again:
        // at a message every 2 seconds it got none of 600 in 20 minutes.
        SenderPool pool = pool(Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"));
        pool.delivered("bot-a", Duration.ofMillis(40));
        pool.delivered("bot-b", Duration.ofSeconds(2));
        pool.delivered("bot-c", Duration.ofMillis(40));
        Duration fast = Duration.ofMillis(40);
        Map<String, Duration> latencies = Map.of("bot-a", fast, "bot-b", fast, "bot-c", fast);

        // Health first: while the mark of its slow delivery holds, the healthier senders take the traffic.
        Map<String, Integer> first = send(pool, 120, Duration.ofSeconds(2), latencies);
        assertThat(first.getOrDefault("bot-b", 0)).isZero();

        // Ten minutes after that delivery its mark is gone: it is tried again, delivers fast, and shares the load.
        Map<String, Integer> later = send(pool, 480, Duration.ofSeconds(2), latencies);
        assertThat(later.get("bot-b")).isGreaterThan(80);
    }

    @Test
    void equallyHealthySenders_shareALowRate_insteadOfOneTakingEveryMessage() {
        // Found by a review: 40 and 41 ms of latency made one sender win every comparison, and at less than a
        // message per second per sender (no capacity used up to tell them apart) it took all 200 messages.
        SenderPool pool = pool(Sender.of("bot-a"), Sender.of("bot-b"));
        Map<String, Duration> latencies = Map.of("bot-a", Duration.ofMillis(40), "bot-b", Duration.ofMillis(41));
        pool.delivered("bot-a", latencies.get("bot-a"));
        pool.delivered("bot-b", latencies.get("bot-b"));

        Map<String, Integer> grants = send(pool, 200, Duration.ofSeconds(2), latencies);

        assertThat(grants.get("bot-a")).isBetween(50, 150);
        assertThat(grants.get("bot-b")).isBetween(50, 150);
    }

    @Test
    void capacityLeft_aSenderThatSentIsNotPreferred_toAnEquallyHealthyOneThatDidNot_afterItsLimitWasLowered() {
        // Found by a review: the capacity a sender had left at its last grant, learnt under its limit of then, was
        // compared with its limit now. Lowered from 30 to 10 a second, one message sent read as 30 left of 10, a
        // share of 2.7: it won the comparison with a sender that had sent nothing. The pool's brake of recipient
        // blocks lowers every limit the same way.
        SenderPool pool = pool(
                Sender.builder("bot-a").group("x").build(),
                Sender.builder("bot-b").group("y").build());
        assertThat(((SendDecision.Granted) pool.acquire(fresh().pinnedTo("bot-a"))).sender())
                .isEqualTo("bot-a");
        pool.setGroupLimits("x", 10, 0);
        pool.sync();

        // bot-a has 9 of 10 left, bot-b 30 of 30: bot-b is the freer.
        assertThat(((SendDecision.Granted) pool.acquire(fresh())).sender()).isEqualTo("bot-b");
    }

    @Test
    void sendersOfDifferentCapacities_getTrafficInProportionToIt() {
        SenderPool pool = pool(
                Sender.builder("bot-big").perSecond(30).build(),
                Sender.builder("bot-small").perSecond(3).build());
        Map<String, Duration> latencies = Map.of("bot-big", Duration.ofMillis(40), "bot-small", Duration.ofMillis(40));

        // 20 a second for 20 seconds: both senders' shares of capacity fall alike, so the traffic splits about 10:1.
        Map<String, Integer> grants = send(pool, 400, Duration.ofMillis(50), latencies);

        assertThat(grants.get("bot-small")).isBetween(20, 60);
        assertThat(grants.get("bot-big")).isEqualTo(400 - grants.get("bot-small"));
    }

    @Test
    void aSenderAddedAtRunTime_takesItsShare_andOneSetRetired_takesNoMore() {
        SenderPool pool = pool(Sender.of("bot-a"), Sender.of("bot-b"));
        Map<String, Duration> latencies =
                Map.of("bot-a", Duration.ofMillis(40), "bot-b", Duration.ofMillis(40), "bot-c", Duration.ofMillis(40));
        send(pool, 100, Duration.ofMillis(100), latencies);

        pool.add(Sender.of("bot-c"));
        Map<String, Integer> withC = send(pool, 300, Duration.ofMillis(100), latencies);
        assertThat(withC.get("bot-c")).isBetween(60, 140);

        pool.setStatus("bot-a", SenderStatus.RETIRED);
        Map<String, Integer> withoutA = send(pool, 300, Duration.ofMillis(100), latencies);
        assertThat(withoutA).doesNotContainKey("bot-a");
        assertThat(withoutA.get("bot-b") + withoutA.get("bot-c")).isEqualTo(300);
    }

    @Test
    void contentTags_neverReachASenderThatMayNotCarryThem_stickyPinnedOrPicked_asGroupsGainAndLoseTags() {
        // A review looked for a path that leaks a message to a sender not allowed its content (the pick, a sticky
        // key's sender, a pinned sender, tags changed at run time, a tag that needs a warm-up stage) and found none;
        // this history is what it kept. Cold senders (stage 0 of a day-long stage) may never carry "media".
        String[] tags = {"links", "media", "voice"};
        Random random = new Random(11);
        WarmUpSchedule cold = WarmUpSchedule.table(1_000_000);
        List<Sender> senders = new ArrayList<>();
        Map<String, Set<String>> carries = new HashMap<>();
        Map<String, String> groupOf = new HashMap<>();
        for (int i = 0; i < 8; i++) {
            String id = "bot-" + i;
            Set<String> own = new LinkedHashSet<>();
            for (String tag : tags) {
                if (random.nextBoolean()) {
                    own.add(tag);
                }
            }
            Sender.Builder b = Sender.builder(id).group("g" + i % 2).tags(own.toArray(String[]::new));
            senders.add(i % 4 == 3 ? b.warmUp(cold).build() : b.build());
            carries.put(id, own);
            groupOf.put(id, "g" + i % 2);
        }
        SenderPool pool = pool(
                SenderPool.builder(storage).ticker(ticker).random(new Random(5)).tagNeedsWarmUpStage("media", 1),
                senders.toArray(Sender[]::new));

        int granted = 0;
        for (int i = 0; i < 3000; i++) {
            if (i % 150 == 0) {
                String group = "g" + random.nextInt(2);
                String tag = tags[random.nextInt(tags.length)];
                boolean add = random.nextBoolean();
                if (add) {
                    pool.addGroupTag(group, tag);
                } else {
                    pool.removeGroupTag(group, tag);
                }
                groupOf.forEach((id, g) -> {
                    if (g.equals(group)) {
                        if (add) {
                            carries.get(id).add(tag);
                        } else {
                            carries.get(id).remove(tag);
                        }
                    }
                });
            }
            Set<String> wanted = new LinkedHashSet<>();
            for (String tag : tags) {
                if (random.nextInt(3) == 0) {
                    wanted.add(tag);
                }
            }
            OutboundMessage m = fresh().carrying(wanted.toArray(String[]::new));
            int how = random.nextInt(3);
            if (how == 1) {
                m = m.stickyBy("user-" + random.nextInt(20));
            } else if (how == 2) {
                m = m.pinnedTo("bot-" + random.nextInt(8));
            }

            SendDecision d = pool.acquire(m);

            if (d instanceof SendDecision.Granted g) {
                granted++;
                assertThat(carries.get(g.sender()))
                        .as("%s went to %s", m, g.sender())
                        .containsAll(wanted);
                if (wanted.contains("media")) {
                    assertThat(pool.warmUpStage(g.sender()))
                            .as("%s went to %s", m, g.sender())
                            .isNotZero();
                }
                g.delivered(Duration.ofMillis(20 + random.nextInt(200)));
            }
            ticker.advance(Duration.ofMillis(50));
        }
        assertThat(granted).isGreaterThan(1000);
    }
}

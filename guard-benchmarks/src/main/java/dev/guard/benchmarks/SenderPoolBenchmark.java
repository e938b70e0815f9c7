package dev.guard.benchmarks;

import dev.guard.Ticker;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.route.OutboundMessage;
import dev.guard.route.PlatformPreset;
import dev.guard.route.SendDecision;
import dev.guard.route.Sender;
import dev.guard.route.SenderPool;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.Storage;
import dev.guard.storage.memory.MemoryStorage;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The cost of one routing decision of a {@link SenderPool} with 16 senders: power-of-two choices over the eligible
 * senders and the one atomic storage call that admits the send (sender gate and block check, per-second quota, chat
 * gate and chat limit: five steps). Limits are set so high that nothing is ever rejected, so every call is one
 * decision and one storage call; 1,024 recipient chats in rotation. The target is under one microsecond on the
 * memory storage.
 *
 * <pre>{@code
 * java -jar guard-benchmarks/target/benchmarks.jar SenderPool -f 1 -wi 2 -i 3 -r 1s -w 1s
 * }</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class SenderPoolBenchmark {
    private static final int CHATS = 1024;

    /** The storage under the pool: {@code memory} (the embedded default), or {@code reference} (the SPI's model). */
    @Param({"memory"})
    public String storage;

    private Storage backend;
    private SenderPool pool;
    private OutboundMessage[] messages;

    @Setup(Level.Trial)
    public void setUp() {
        backend = open(storage);
        // Limits far above what one machine can send, so that the benchmark measures decisions, not rejections.
        SlidingWindowCounter roomy = new SlidingWindowCounter(1L << 40, Duration.ofSeconds(1), 10);
        SenderPool.Builder b = SenderPool.builder(backend)
                .ticker(Ticker.system())
                .preset(PlatformPreset.of("benchmark", 1L << 40, roomy, roomy));
        for (int i = 0; i < 16; i++) {
            b.sender(Sender.of("bot-" + i));
        }
        pool = b.build();
        messages = new OutboundMessage[CHATS];
        for (int i = 0; i < CHATS; i++) {
            messages[i] = OutboundMessage.to("chat-" + i);
        }
    }

    static Storage open(String name) {
        return switch (name) {
            case "memory" -> MemoryStorage.create();
            case "reference" -> ReferenceStorage.create();
            default -> throw new IllegalArgumentException("storage must be memory or reference but was " + name);
        };
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
    }

    /** Per thread: which chat is next. */
    @State(Scope.Thread)
    public static class Cursor {
        int next;
    }

    /** One routing decision and its storage call. */
    @Benchmark
    public SendDecision acquire(Cursor cursor) {
        int i = cursor.next++ & (CHATS - 1);
        return pool.acquire(messages[i]);
    }
}

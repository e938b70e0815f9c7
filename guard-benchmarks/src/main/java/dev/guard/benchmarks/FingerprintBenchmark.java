package dev.guard.benchmarks;

import dev.guard.internal.Fingerprint;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The content fingerprint of duplicate suppression, per message text of {@code length} UTF-16 units: {@code current}
 * is {@link Fingerprint#of}, {@code previous} the function it replaced on 2026-12-06 (two FNV-1a style hashes of one
 * multiplication per unit each, kept here only to be measured beside it). Texts are taken in turn from a small pool,
 * so that they stay in the caches as a bot's just-parsed update does.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class FingerprintBenchmark {
    @Param({"18", "100", "1000"})
    public int length;

    @Param({"current", "previous"})
    public String impl;

    private final String[] texts = new String[64];
    private boolean current;
    private int next;

    @Setup
    public void setUp() {
        current = switch (impl) {
            case "current" -> true;
            case "previous" -> false;
            default -> throw new IllegalArgumentException("impl must be current or previous but was " + impl);
        };
        for (int i = 0; i < texts.length; i++) {
            StringBuilder text = new StringBuilder(length);
            while (text.length() < length) {
                text.append("message ").append(i).append(' ');
            }
            texts[i] = text.substring(0, length);
        }
    }

    @Benchmark
    public long of() {
        String text = texts[next];
        next = (next + 1) & (texts.length - 1);
        return current ? Fingerprint.of(text) : previous(text);
    }

    /** The fingerprint before 2026-12-06: one multiplication per unit in each of two lanes. */
    static long previous(CharSequence content) {
        long h1 = 0xcbf29ce484222325L;
        long h2 = 0x84222325cbf29ce4L ^ content.length();
        for (int i = 0, n = content.length(); i < n; i++) {
            char c = content.charAt(i);
            h1 = (h1 ^ c) * 0x100000001b3L;
            h2 = (h2 ^ c) * 0x9e3779b97f4a7c15L;
        }
        return (mix(h1) ^ Long.rotateLeft(mix(h2 ^ h1), 29)) >>> 11;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}

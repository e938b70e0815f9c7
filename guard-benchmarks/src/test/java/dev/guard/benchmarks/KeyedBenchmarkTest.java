package dev.guard.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.BitSet;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class KeyedBenchmarkTest {
    private static final int KEYS = 2_000;

    /**
     * A side that met keys for the first time in its measurement would build buckets there that the other side built
     * in its warm-up: the setup gives every key of the sample its bucket, on every side, and no other key one.
     */
    @ParameterizedTest
    @ValueSource(strings = {"guard", "guard-precise", "guard-check", "bucket4j", "bucket4j-inline"})
    void setUp_givesEveryKeyOfTheSampleItsBucket_onEverySide(String impl) {
        KeyedBenchmark benchmark = new KeyedBenchmark();
        benchmark.impl = impl;
        benchmark.keys = KEYS;
        benchmark.setUp();
        try {
            BitSet reached = new BitSet(KEYS);
            for (int index : benchmark.sample) {
                reached.set(index);
            }
            BitSet held = new BitSet(KEYS);
            for (int index = 0; index < KEYS; index++) {
                boolean has = benchmark.buckets != null
                        ? benchmark.buckets.getIfPresent(index) != null
                        // The memory storage drops state only on a newer clock than it has seen: nothing since setUp.
                        : benchmark.storage.forget("u:" + index) == 1;
                held.set(index, has);
            }

            assertThat(reached.cardinality()).isGreaterThan(KEYS / 2);
            assertThat(held).isEqualTo(reached);
        } finally {
            benchmark.tearDown();
        }
    }
}

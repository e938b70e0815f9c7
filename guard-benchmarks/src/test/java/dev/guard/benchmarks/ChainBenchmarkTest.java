package dev.guard.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ChainBenchmarkTest {

    /**
     * The benchmark measures a chain that commits every time: each of its configurations, Guard's and the peers',
     * lets every message through, message after message, for minutes of its clock.
     */
    @ParameterizedTest
    @CsvSource({
        "guard, all, 0, 0",
        "guard, all, 100, 0",
        "guard, all, 0, 34",
        "guard, all, 7, 50",
        "guard, limits, 0, 0",
        "guard, bucket, 0, 0",
        "peers, all, 0, 0",
        "peers, all, 0, 34"
    })
    void check_everyMessage_passes(String impl, String filters, int tenants, int chats) {
        ChainBenchmark benchmark = configured(impl, filters, tenants, chats);
        try {
            ChainBenchmark.Cursor cursor = new ChainBenchmark.Cursor();
            cursor.setUp(benchmark);
            // Every user writes 30 times, five minutes of the benchmark's clock.
            for (int i = 0; i < 30 * benchmark.users; i++) {
                assertThat(benchmark.check(cursor).allowed())
                        .as("message %d", i)
                        .isTrue();
            }
        } finally {
            benchmark.tearDown();
        }
    }

    @ParameterizedTest
    @CsvSource({"guard, all, 0, 25", "peers, limits, 0, 0", "peers, all, 3, 0", "other, all, 0, 0"})
    void setUp_aConfigurationTheBenchmarkCannotRunAsDocumented_isRefused(
            String impl, String filters, int tenants, int chats) {
        assertThatThrownBy(() -> configured(impl, filters, tenants, chats))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(chats == 25 ? "chats" : "impl");
    }

    private static ChainBenchmark configured(String impl, String filters, int tenants, int chats) {
        ChainBenchmark benchmark = new ChainBenchmark();
        benchmark.impl = impl;
        benchmark.filters = filters;
        benchmark.storage = "memory";
        benchmark.users = 100;
        benchmark.tenants = tenants;
        benchmark.chats = chats;
        benchmark.setUp();
        return benchmark;
    }
}

package dev.guard.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.openjdk.jmh.annotations.Param;

class TokenBucketBenchmarkTest {
    private static final String[] IMPLS = {
        "guard", "guard-precise", "guard-check", "guard-allows", "bucket4j", "resilience4j", "guava"
    };

    @Test
    void impls_areTheOnesTheBenchmarkRuns_includingGuardCheckWhatABotCalls() throws NoSuchFieldException {
        Param param = TokenBucketBenchmark.class.getField("impl").getAnnotation(Param.class);

        assertThat(param.value()).containsExactly(IMPLS);
    }

    @ParameterizedTest
    @ValueSource(
            strings = {"guard", "guard-precise", "guard-check", "guard-allows", "bucket4j", "resilience4j", "guava"})
    void everyImpl_admitsEveryCall_soThatAllSidesDoTheSameWork(String impl) {
        TokenBucketBenchmark benchmark = new TokenBucketBenchmark();
        benchmark.impl = impl;
        benchmark.setUp();
        try {
            int admitted = 0;
            for (int i = 0; i < 100_000; i++) {
                admitted += benchmark.oneThread() ? 1 : 0;
            }

            assertThat(admitted).isEqualTo(100_000);
        } finally {
            benchmark.tearDown();
        }
    }
}

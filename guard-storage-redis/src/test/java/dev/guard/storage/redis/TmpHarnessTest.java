package dev.guard.storage.redis;

import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class TmpHarnessTest {
    @Test
    void harness() {
        TokenBucket spec = new TokenBucket(1_000_000_000L, 1_000_000_000L, Duration.ofSeconds(1));
        StateKey key = new StateKey("bucket", "hot");
        try (RedisStorage storage = RedisStorage.builder("redis://127.0.0.1:6379")
                .keyPrefix("harness:")
                .build()) {
            int rounds = 30, n = 2000;
            double[] ping = new double[rounds], acq = new double[rounds];
            for (int round = 0; round < rounds; round++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) storage.health();
                long t1 = System.nanoTime();
                for (int i = 0; i < n; i++)
                    storage.acquire(key, spec, 1, dev.guard.Ticker.system().epochMicros());
                long t2 = System.nanoTime();
                ping[round] = (t1 - t0) / 1e3 / n;
                acq[round] = (t2 - t1) / 1e3 / n;
            }
            Arrays.sort(ping);
            Arrays.sort(acq);
            System.err.printf(
                    "DEBUG median ping %.1f us acquire %.1f us; min %.1f / %.1f%n",
                    ping[rounds / 2], acq[rounds / 2], ping[0], acq[0]);
        }
    }
}

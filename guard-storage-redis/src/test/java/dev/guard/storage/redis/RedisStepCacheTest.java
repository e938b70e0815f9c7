package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Gate;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The step texts that the Functions library keeps parsed across calls: at most 1,000, then emptied, so that specs
 * which vary without end (a limit per chat size, say) cannot grow the server's Lua memory without bound. On a private
 * server, whose Lua memory only this test's calls use.
 */
class RedisStepCacheTest {
    private static final int BATCH = 1_000;
    private static final int BATCHES = 40;

    @Test
    void stepTexts_farMoreThanTheServerKeeps_leaveItsLuaMemoryBounded() {
        ManualTicker ticker = ManualTicker.create();
        RedisClient admin;
        try (RedisProcess server = RedisProcess.start();
                RedisStorage storage = RedisStorage.builder(server.uri()).build()) {
            admin = RedisClient.create(server.uri());
            try (StatefulRedisConnection<String, String> connection = admin.connect()) {
                // Gates only read, so no state grows in Redis; the permits make every step's text new.
                long permits = 0;
                evaluate(storage, permits, ticker.epochMicros());
                permits += BATCH;
                long before = luaMemory(connection);
                for (int b = 1; b < BATCHES; b++) {
                    assertThat(evaluate(storage, permits, ticker.epochMicros())).isTrue();
                    permits += BATCH;
                }
                long after = luaMemory(connection);

                // 39,000 texts kept would take some 12 MB (a string and a five-number table each); 1,000 take 0.3 MB.
                assertThat(after - before)
                        .as("Lua memory growth after %d new step texts", permits - BATCH)
                        .isLessThan(3L << 20);
            } finally {
                admin.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    /** Evaluates one batch of gate steps whose permits run from {@code first}; whether it was admitted. */
    private static boolean evaluate(RedisStorage storage, long first, long now) {
        List<Step> steps = new ArrayList<>(BATCH);
        for (int i = 0; i < BATCH; i++) {
            steps.add(new Step(new StateKey("gate", "g" + i), Gate.INSTANCE, first + i));
        }
        return storage.evaluate(new Batch(steps), now).admitted();
    }

    /** The bytes the server's Functions Lua VM holds, as {@code INFO memory} reports them. */
    private static long luaMemory(StatefulRedisConnection<String, String> connection) {
        for (String line : connection.sync().info("memory").split("\r\n")) {
            if (line.startsWith("used_memory_vm_functions:")) {
                return Long.parseLong(line.substring(line.indexOf(':') + 1));
            }
        }
        throw new AssertionError("INFO memory has no used_memory_vm_functions");
    }
}

package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.spi.StorageHealth;
import io.lettuce.core.RedisURI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * In a Cluster, {@code health()} answers for every master that serves slots, not only the node its connection
 * happens to talk to: one master down fails the decisions on its slots while the others answer.
 */
class RedisClusterHealthTest {
    @Test
    void health_sharedClusterUp_isUp() {
        String seed = RedisServers.cluster();
        RedisURI uri = RedisURI.create(seed);
        try (RedisStorage storage = RedisStorage.builder(seed)
                .keyPrefix(Target.freshPrefix())
                .timeout(Duration.ofSeconds(2))
                .build()) {
            StorageHealth health = storage.health();
            assertThat(health.up()).as("health %s", health).isTrue();
            assertThat(health.detail()).isEqualTo("redis cluster " + uri.getHost() + ":" + uri.getPort());
            assertThat(health.latency()).isLessThan(Duration.ofSeconds(2));
        }
    }

    @Test
    void health_oneMasterStopped_isDownNamingOnlyThatMaster() {
        try (PrivateCluster cluster = PrivateCluster.start(3);
                RedisStorage storage = RedisStorage.builder(cluster.seed())
                        .timeout(Duration.ofSeconds(1))
                        .build()) {
            List<RedisProcess> masters = cluster.masters();
            String seed = "127.0.0.1:" + masters.get(0).port();

            // Every master gets one PING, and only that; the servers are the test's own, so nobody else counts.
            List<CommandStats> stats = new ArrayList<>();
            try {
                for (RedisProcess master : masters) {
                    stats.add(new CommandStats(List.of(master.uri())));
                }
                List<Map<String, Long>> before =
                        stats.stream().map(CommandStats::counts).toList();
                StorageHealth up = storage.health();
                assertThat(up.up()).as("health %s", up).isTrue();
                assertThat(up.detail()).isEqualTo("redis cluster " + seed);
                for (int i = 0; i < masters.size(); i++) {
                    assertThat(CommandStats.delta(before.get(i), stats.get(i).counts()))
                            .as("commands on master %d", i)
                            .isEqualTo(Map.of("ping", 1L));
                }
            } finally {
                stats.forEach(CommandStats::close);
            }

            // Not the seed, which the storage's own connection talks to: its PING alone answered before.
            RedisProcess stopped = masters.get(2);
            stopped.stop();
            StorageHealth down = storage.health();

            assertThat(down.up()).as("health %s", down).isFalse();
            assertThat(down.detail())
                    .startsWith("redis cluster " + seed
                            + ": redis health failed: 1 of 3 masters unreachable: 127.0.0.1:" + stopped.port() + " (")
                    .doesNotContain(":" + masters.get(1).port());
            assertThat(down.latency()).isLessThan(Duration.ofSeconds(2));
        }
    }

    @Test
    void clusterHealth_namesEveryUnreachableMasterWithItsReason() {
        Map<String, String> unreachable = new LinkedHashMap<>();
        unreachable.put("10.0.0.2:6379", "Connection refused");
        unreachable.put("10.0.0.3:6379", "no answer within 500 ms");

        StorageHealth health =
                RedisStorage.clusterHealth("redis cluster 10.0.0.1:6379", 3, unreachable, Duration.ofMillis(500));

        assertThat(health.up()).isFalse();
        assertThat(health.latency()).isEqualTo(Duration.ofMillis(500));
        assertThat(health.detail())
                .isEqualTo("redis cluster 10.0.0.1:6379: redis health failed: 2 of 3 masters unreachable: "
                        + "10.0.0.2:6379 (Connection refused), 10.0.0.3:6379 (no answer within 500 ms)");
    }

    @Test
    void clusterHealth_everyMasterAnswered_isUp() {
        StorageHealth health =
                RedisStorage.clusterHealth("redis cluster 10.0.0.1:6379", 3, Map.of(), Duration.ofMillis(2));

        assertThat(health).isEqualTo(StorageHealth.up(Duration.ofMillis(2), "redis cluster 10.0.0.1:6379"));
    }

    @Test
    void clusterHealth_noMasterServingSlots_isDown() {
        StorageHealth health = RedisStorage.clusterHealth("redis cluster 10.0.0.1:6379", 0, Map.of(), Duration.ZERO);

        assertThat(health.up()).isFalse();
        assertThat(health.detail())
                .isEqualTo("redis cluster 10.0.0.1:6379: redis health failed: no master serves slots in the client's "
                        + "topology");
    }
}

package dev.guard.storage.redis;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * A Redis Cluster of masters without replicas, on free loopback ports, that a test starts itself and may stop a master
 * of: what the shared Cluster of {@link RedisServers} must never go through. Needs redis-server, as {@link
 * RedisProcess} does.
 */
final class PrivateCluster implements AutoCloseable {
    private static final int SLOTS = 16_384;
    /** A master reports the cluster ok once gossip has told it every slot, and no sooner than 2 s after it started. */
    private static final long READY_SECONDS = 20;

    private final List<RedisProcess> masters = new ArrayList<>();

    private PrivateCluster() {}

    /**
     * Starts {@code size} masters, gives each an equal share of the slots, introduces them to each other and waits
     * until every one reports the cluster ok.
     */
    static PrivateCluster start(int size) {
        PrivateCluster cluster = new PrivateCluster();
        try {
            cluster.form(size);
            return cluster;
        } catch (RuntimeException | Error e) {
            cluster.close();
            throw e;
        }
    }

    private void form(int size) {
        for (int i = 0; i < size; i++) {
            masters.add(RedisProcess.startClusterNode());
        }
        List<CountDownLatch> ok = new ArrayList<>();
        for (RedisProcess master : masters) {
            ok.add(master.expectLine("Cluster state changed: ok"));
        }
        for (int i = 0; i < size; i++) {
            int[] slots =
                    IntStream.range(SLOTS * i / size, SLOTS * (i + 1) / size).toArray();
            on(masters.get(i), redis -> redis.clusterAddSlots(slots));
        }
        on(masters.get(0), redis -> {
            for (RedisProcess other : masters.subList(1, size)) {
                // CLUSTER MEET with the bus port: the bus is not on the default port + 10000.
                redis.dispatch(
                        CommandType.CLUSTER,
                        new StatusOutput<>(StringCodec.UTF8),
                        new CommandArgs<>(StringCodec.UTF8)
                                .add("MEET")
                                .add("127.0.0.1")
                                .add(other.port())
                                .add(other.busPort()));
            }
        });
        for (int i = 0; i < size; i++) {
            try {
                if (!ok.get(i).await(READY_SECONDS, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("the private cluster's master on port "
                            + masters.get(i).port() + " did not report cluster_state ok within " + READY_SECONDS
                            + " s");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while forming a private cluster", e);
            }
        }
    }

    private static void on(RedisProcess node, Consumer<RedisCommands<String, String>> use) {
        RedisClient client = RedisClient.create(node.uri());
        try (StatefulRedisConnection<String, String> connection = client.connect()) {
            use.accept(connection.sync());
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    /** The URI of the first master, to connect through. */
    String seed() {
        return masters.get(0).uri();
    }

    /** The masters, in the order of the slots they serve. */
    List<RedisProcess> masters() {
        return List.copyOf(masters);
    }

    @Override
    public void close() {
        for (RedisProcess master : masters) {
            master.close();
        }
    }
}

package dev.guard.storage.redis;

import dev.guard.storage.tck.RequiredServer;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The servers the tests run against, read from the environment: {@code GUARD_REDIS_URI} (a standalone Redis,
 * default {@code redis://127.0.0.1:6379}) and {@code GUARD_REDIS_CLUSTER_URI} (any node of a 3-master Cluster,
 * default {@code redis://127.0.0.1:7001}, which {@code .ci/redis-cluster.sh} starts). Without them tests skip, and
 * under {@code CI=true} they fail.
 */
final class RedisServers {
    static final String STANDALONE = RequiredServer.env("GUARD_REDIS_URI", "redis://127.0.0.1:6379");
    static final String CLUSTER = RequiredServer.env("GUARD_REDIS_CLUSTER_URI", "redis://127.0.0.1:7001");

    private static final ConcurrentMap<String, Throwable> PROBES = new ConcurrentHashMap<>();
    private static final Throwable REACHABLE = new Throwable("reachable");

    private RedisServers() {}

    /** Skips (or under CI fails) the calling test unless the standalone Redis answers. */
    static String standalone() {
        Throwable probe = PROBES.computeIfAbsent(STANDALONE, uri -> probe(uri, false));
        RequiredServer.assume(
                "Redis at " + RedisStorage.redact(STANDALONE),
                probe == REACHABLE,
                "start redis-server or set GUARD_REDIS_URI",
                probe == REACHABLE ? null : probe);
        return STANDALONE;
    }

    /** Skips (or under CI fails) the calling test unless the Cluster answers with {@code cluster_state:ok}. */
    static String cluster() {
        Throwable probe = PROBES.computeIfAbsent(CLUSTER, uri -> probe(uri, true));
        RequiredServer.assume(
                "Redis Cluster at " + RedisStorage.redact(CLUSTER),
                probe == REACHABLE,
                "run export GUARD_REDIS_CLUSTER_URI=$(.ci/redis-cluster.sh)",
                probe == REACHABLE ? null : probe);
        return CLUSTER;
    }

    /** The URIs of the Cluster's masters, from {@code CLUSTER NODES} on {@code seed}. */
    static List<String> clusterMasters(String seed) {
        RedisClient client = RedisClient.create(seed);
        try (StatefulRedisConnection<String, String> connection = client.connect()) {
            List<String> masters = new ArrayList<>();
            for (String line : connection.sync().clusterNodes().split("\n")) {
                String[] fields = line.trim().split(" ");
                if (fields.length > 2 && fields[2].contains("master")) {
                    String address = fields[1].substring(0, fields[1].indexOf('@'));
                    masters.add("redis://" + address);
                }
            }
            return masters;
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    private static Throwable probe(String uri, boolean cluster) {
        RedisURI redisUri = RedisURI.create(uri);
        redisUri.setTimeout(Duration.ofSeconds(2));
        RedisClient client = RedisClient.create(redisUri);
        try (StatefulRedisConnection<String, String> connection = client.connect()) {
            RedisCommands<String, String> redis = connection.sync();
            redis.ping();
            if (cluster && !redis.clusterInfo().contains("cluster_state:ok")) {
                return new IllegalStateException("cluster_state is not ok");
            }
            return REACHABLE;
        } catch (RuntimeException e) {
            return e;
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }
}

package dev.guard.storage.redis;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What Redis servers executed, from {@code INFO commandstats}: the count of each command (calls plus rejected calls)
 * summed over the servers. Counting on the server proves round trips without trusting the client.
 */
final class CommandStats implements AutoCloseable {
    private final List<RedisClient> clients = new ArrayList<>();
    private final List<StatefulRedisConnection<String, String>> connections = new ArrayList<>();

    /** Reads the servers at {@code uris}. */
    CommandStats(List<String> uris) {
        for (String uri : uris) {
            RedisURI redisUri = RedisURI.create(uri);
            redisUri.setTimeout(Duration.ofSeconds(5));
            RedisClient client = RedisClient.create(redisUri);
            clients.add(client);
            connections.add(client.connect());
        }
    }

    /** The count of every command so far, by name ({@code fcall}, {@code get}, ...), {@code info} left out. */
    Map<String, Long> counts() {
        Map<String, Long> counts = new HashMap<>();
        for (StatefulRedisConnection<String, String> connection : connections) {
            for (String line : connection.sync().info("commandstats").split("\r?\n")) {
                if (!line.startsWith("cmdstat_")) {
                    continue;
                }
                String name = line.substring("cmdstat_".length(), line.indexOf(':'));
                long calls = 0;
                for (String field : line.substring(line.indexOf(':') + 1).split(",")) {
                    if (field.startsWith("calls=") || field.startsWith("rejected_calls=")) {
                        calls += Long.parseLong(field.substring(field.indexOf('=') + 1));
                    }
                }
                if (!name.equals("info")) {
                    counts.merge(name, calls, Long::sum);
                }
            }
        }
        return counts;
    }

    /** The commands executed between {@code before} and {@code after}, those with no change left out. */
    static Map<String, Long> delta(Map<String, Long> before, Map<String, Long> after) {
        Map<String, Long> delta = new HashMap<>();
        after.forEach((name, count) -> {
            long d = count - before.getOrDefault(name, 0L);
            if (d != 0) {
                delta.put(name, d);
            }
        });
        return delta;
    }

    @Override
    public void close() {
        connections.forEach(StatefulRedisConnection::close);
        clients.forEach(c -> c.shutdown(Duration.ZERO, Duration.ofSeconds(2)));
    }
}

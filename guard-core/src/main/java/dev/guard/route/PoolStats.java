package dev.guard.route;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * A snapshot of a pool's stats per sender and per A/B group, exportable as CSV and JSON. The JSON is written by hand
 * (no Jackson needed): a flat object of arrays of flat objects, with the heat maps as 7 by 24 arrays.
 *
 * @param pool the pool's name
 * @param at when the snapshot was taken, by the pool's ticker
 * @param brake the pool's brake of recipient blocks, in (0, 1]: the factor of every sender's paced per-second limit,
 *     below one while recipient blocks brake the pool ({@link SenderPool.Builder#recipientBlockBrake}); local to the
 *     process
 * @param senders one entry per sender, in the order they were added
 * @param groups one entry per group, in order of first appearance
 */
public record PoolStats(String pool, Instant at, double brake, List<SenderStats> senders, List<GroupStats> groups) {
    /**
     * Creates a snapshot; the lists are copied.
     *
     * @throws NullPointerException if a component is null or a list holds null; the message names it
     * @throws IllegalArgumentException if {@code brake} is not in (0, 1]
     */
    public PoolStats {
        Objects.requireNonNull(pool, "pool must not be null");
        Objects.requireNonNull(at, "at must not be null");
        if (!(brake > 0 && brake <= 1)) {
            throw new IllegalArgumentException("brake must be above 0 and at most 1 but was " + brake);
        }
        senders = copy("senders", senders);
        groups = copy("groups", groups);
    }

    private static <T> List<T> copy(String field, List<T> list) {
        Objects.requireNonNull(list, field + " must not be null");
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i) == null) {
                throw new NullPointerException(field + " must not hold null but held it at index " + i);
            }
        }
        return List.copyOf(list);
    }

    static PoolStats of(String pool, Instant at, double brake, List<SenderStats> senders) {
        Map<String, List<SenderStats>> byGroup = new LinkedHashMap<>();
        for (SenderStats s : senders) {
            byGroup.computeIfAbsent(s.group(), g -> new ArrayList<>()).add(s);
        }
        List<GroupStats> groups = new ArrayList<>();
        byGroup.forEach((group, members) -> {
            long sent = 0, delivered = 0, failed = 0, pushbacks = 0, recipientBlocks = 0, blocks = 0;
            long failureTrials = 0, blockTrials = 0;
            double risk = 0;
            HeatMap failures = HeatMap.empty();
            HeatMap blocked = HeatMap.empty();
            for (SenderStats s : members) {
                sent += s.sent();
                delivered += s.delivered();
                failed += s.failed();
                pushbacks += s.pushbacks();
                recipientBlocks += s.recipientBlocks();
                blocks += s.blocks();
                // Per sender, as its own rates count: feedback for sends another process granted is a send too.
                failureTrials += Math.max(s.sent(), s.failed());
                blockTrials += Math.max(s.sent(), s.recipientBlocks() + s.blocks());
                risk = Math.max(risk, s.risk());
                failures = HeatMap.sum(failures, s.failuresByHour());
                blocked = HeatMap.sum(blocked, s.blocksByHour());
            }
            groups.add(new GroupStats(
                    group,
                    members.size(),
                    sent,
                    delivered,
                    failed,
                    pushbacks,
                    recipientBlocks,
                    blocks,
                    risk,
                    failures,
                    blocked,
                    failureTrials,
                    blockTrials));
        });
        return new PoolStats(pool, at, brake, senders, groups);
    }

    /** The stats of {@code sender}, or null when the pool has no such sender. */
    public SenderStats sender(String sender) {
        return senders.stream()
                .filter(s -> s.sender().equals(sender))
                .findFirst()
                .orElse(null);
    }

    /** The stats of {@code group}, or null when no sender is in it. */
    public GroupStats group(String group) {
        return groups.stream().filter(g -> g.group().equals(group)).findFirst().orElse(null);
    }

    /**
     * One CSV row per sender under a header: {@code sender,group,status,stage,allowance,sent,delivered,failed,
     * pushbacks,recipient_blocks,blocks,failure_rate,block_rate,latency_ms,success,pacing,risk,brake}, where brake is
     * the pool's ({@link #brake()}, the same in every row: a sender's per-second limit is its limit times pacing times
     * brake). Fields that hold a comma, quote or line break are quoted (RFC 4180).
     */
    public String toCsv() {
        StringBuilder sb = new StringBuilder("sender,group,status,stage,allowance,sent,delivered,failed,pushbacks,"
                + "recipient_blocks,blocks,failure_rate,block_rate,latency_ms,success,pacing,risk,brake\n");
        for (SenderStats s : senders) {
            sb.append(csv(s.sender()))
                    .append(',')
                    .append(csv(s.group()))
                    .append(',')
                    .append(s.status())
                    .append(',')
                    .append(s.warmUpStage())
                    .append(',')
                    .append(s.allowance() == Long.MAX_VALUE ? "" : Long.toString(s.allowance()))
                    .append(',')
                    .append(s.sent())
                    .append(',')
                    .append(s.delivered())
                    .append(',')
                    .append(s.failed())
                    .append(',')
                    .append(s.pushbacks())
                    .append(',')
                    .append(s.recipientBlocks())
                    .append(',')
                    .append(s.blocks())
                    .append(',')
                    .append(num(s.failureRate()))
                    .append(',')
                    .append(num(s.blockRate()))
                    .append(',')
                    .append(num(s.latency().toNanos() / 1e6))
                    .append(',')
                    .append(num(s.success()))
                    .append(',')
                    .append(num(s.pacing()))
                    .append(',')
                    .append(num(s.risk()))
                    .append(',')
                    .append(num(brake))
                    .append('\n');
        }
        return sb.toString();
    }

    /**
     * The heat maps as CSV, one row per sender, map and day: {@code sender,map,day,h00..h23}, where map is {@code
     * sent}, {@code failures} or {@code blocks}.
     */
    public String heatMapCsv() {
        StringBuilder sb = new StringBuilder("sender,map");
        String header = HeatMap.empty().toCsv();
        sb.append(',').append(header, 0, header.indexOf('\n') + 1);
        for (SenderStats s : senders) {
            appendRows(sb, s.sender(), "sent", s.sentByHour());
            appendRows(sb, s.sender(), "failures", s.failuresByHour());
            appendRows(sb, s.sender(), "blocks", s.blocksByHour());
        }
        return sb.toString();
    }

    private static void appendRows(StringBuilder sb, String sender, String map, HeatMap heatMap) {
        String csv = heatMap.toCsv();
        String prefix = csv(sender) + "," + map + ",";
        for (String row : csv.substring(csv.indexOf('\n') + 1).split("\n")) {
            sb.append(prefix).append(row).append('\n');
        }
    }

    /** The snapshot as JSON: {@code {"pool":..,"at":..,"brake":..,"senders":[..],"groups":[..]}}. */
    public String toJson() {
        StringBuilder sb = new StringBuilder("{\"pool\":");
        str(sb, pool);
        sb.append(",\"at\":");
        str(sb, at.toString());
        sb.append(",\"brake\":").append(num(brake));
        sb.append(",\"senders\":[");
        for (int i = 0; i < senders.size(); i++) {
            SenderStats s = senders.get(i);
            sb.append(i == 0 ? "{" : ",{").append("\"sender\":");
            str(sb, s.sender());
            sb.append(",\"group\":");
            str(sb, s.group());
            sb.append(",\"status\":\"").append(s.status()).append('"');
            sb.append(",\"stage\":").append(s.warmUpStage());
            sb.append(",\"allowance\":").append(s.allowance() == Long.MAX_VALUE ? "null" : s.allowance());
            sb.append(",\"sent\":").append(s.sent());
            sb.append(",\"delivered\":").append(s.delivered());
            sb.append(",\"failed\":").append(s.failed());
            sb.append(",\"pushbacks\":").append(s.pushbacks());
            sb.append(",\"recipientBlocks\":").append(s.recipientBlocks());
            sb.append(",\"blocks\":").append(s.blocks());
            sb.append(",\"failureRate\":").append(num(s.failureRate()));
            sb.append(",\"blockRate\":").append(num(s.blockRate()));
            sb.append(",\"latencyMs\":").append(num(s.latency().toNanos() / 1e6));
            sb.append(",\"success\":").append(num(s.success()));
            sb.append(",\"pacing\":").append(num(s.pacing()));
            sb.append(",\"risk\":").append(num(s.risk()));
            sb.append(",\"sentByHour\":");
            s.sentByHour().appendJson(sb);
            sb.append(",\"failuresByHour\":");
            s.failuresByHour().appendJson(sb);
            sb.append(",\"blocksByHour\":");
            s.blocksByHour().appendJson(sb);
            sb.append('}');
        }
        sb.append("],\"groups\":[");
        for (int i = 0; i < groups.size(); i++) {
            GroupStats g = groups.get(i);
            sb.append(i == 0 ? "{" : ",{").append("\"group\":");
            str(sb, g.group());
            sb.append(",\"senders\":").append(g.senders());
            sb.append(",\"sent\":").append(g.sent());
            sb.append(",\"delivered\":").append(g.delivered());
            sb.append(",\"failed\":").append(g.failed());
            sb.append(",\"pushbacks\":").append(g.pushbacks());
            sb.append(",\"recipientBlocks\":").append(g.recipientBlocks());
            sb.append(",\"blocks\":").append(g.blocks());
            sb.append(",\"failureRate\":").append(num(g.failureRate()));
            sb.append(",\"blockRate\":").append(num(g.blockRate()));
            sb.append(",\"risk\":").append(num(g.risk()));
            sb.append('}');
        }
        return sb.append("]}").toString();
    }

    private static String num(double d) {
        return String.format(Locale.ROOT, "%.6f", d);
    }

    private static String csv(String field) {
        boolean quote = false;
        for (int i = 0; i < field.length() && !quote; i++) {
            char c = field.charAt(i);
            quote = c == ',' || c == '"' || c == '\n' || c == '\r';
        }
        return quote ? '"' + field.replace("\"", "\"\"") + '"' : field;
    }

    private static void str(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}

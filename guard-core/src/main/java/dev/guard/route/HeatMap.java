package dev.guard.route;

import java.time.DayOfWeek;
import java.util.Arrays;

/**
 * Counts by hour of the week: 7 days (Monday first) by 24 hours, in the pool's stats zone. Shows when failures and
 * blocks happen (a platform that pushes back every evening, a block wave on Mondays).
 *
 * <p>An immutable snapshot; thread-safe.
 */
public final class HeatMap {
    /** Hours in a week: the number of cells. */
    public static final int CELLS = 7 * 24;

    private final long[] cells;

    HeatMap(long[] cells) {
        if (cells.length != CELLS) {
            throw new IllegalArgumentException("cells must hold " + CELLS + " counts but held " + cells.length);
        }
        this.cells = cells;
    }

    static HeatMap sum(HeatMap a, HeatMap b) {
        long[] cells = new long[CELLS];
        for (int i = 0; i < CELLS; i++) {
            cells[i] = a.cells[i] + b.cells[i];
        }
        return new HeatMap(cells);
    }

    static HeatMap empty() {
        return new HeatMap(new long[CELLS]);
    }

    /**
     * The count of {@code hour} (0-23) on {@code day}.
     *
     * @throws IllegalArgumentException if {@code day} is null or {@code hour} is not 0-23
     */
    public long count(DayOfWeek day, int hour) {
        checkDay(day);
        if (hour < 0 || hour > 23) {
            throw new IllegalArgumentException("hour must be between 0 and 23 but was " + hour);
        }
        return cells[(day.getValue() - 1) * 24 + hour];
    }

    /** The sum of every cell. */
    public long total() {
        long sum = 0;
        for (long c : cells) {
            sum += c;
        }
        return sum;
    }

    /**
     * The counts of one day, hour 0 first.
     *
     * @throws IllegalArgumentException if {@code day} is null
     */
    public long[] day(DayOfWeek day) {
        checkDay(day);
        int from = (day.getValue() - 1) * 24;
        return Arrays.copyOfRange(cells, from, from + 24);
    }

    private static void checkDay(DayOfWeek day) {
        if (day == null) {
            throw new IllegalArgumentException("day must not be null");
        }
    }

    /** A CSV table: a header {@code day,h00..h23}, then one row per day, Monday first. */
    public String toCsv() {
        StringBuilder sb = new StringBuilder("day");
        for (int h = 0; h < 24; h++) {
            sb.append(h < 10 ? ",h0" : ",h").append(h);
        }
        sb.append('\n');
        for (DayOfWeek day : DayOfWeek.values()) {
            sb.append(day);
            for (long c : day(day)) {
                sb.append(',').append(c);
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    void appendJson(StringBuilder sb) {
        sb.append('[');
        for (int d = 0; d < 7; d++) {
            sb.append(d == 0 ? "[" : ",[");
            for (int h = 0; h < 24; h++) {
                sb.append(h == 0 ? "" : ",").append(cells[d * 24 + h]);
            }
            sb.append(']');
        }
        sb.append(']');
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof HeatMap m && Arrays.equals(m.cells, cells);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(cells);
    }

    @Override
    public String toString() {
        return "HeatMap[total=" + total() + "]";
    }
}

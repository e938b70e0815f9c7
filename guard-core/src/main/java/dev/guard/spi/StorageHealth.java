package dev.guard.spi;

import java.time.Duration;
import java.util.Objects;

/**
 * The answer of {@link Storage#health()}.
 *
 * @param up whether the storage answered
 * @param latency how long the probe took
 * @param detail a short human-readable description, never credentials
 */
public record StorageHealth(boolean up, Duration latency, String detail) {
    /** Creates a health report. */
    public StorageHealth {
        Objects.requireNonNull(latency, "latency must not be null");
        Objects.requireNonNull(detail, "detail must not be null");
    }

    /** A storage that answered in {@code latency}. */
    public static StorageHealth up(Duration latency, String detail) {
        return new StorageHealth(true, latency, detail);
    }

    /** A storage that did not answer. */
    public static StorageHealth down(Duration latency, String detail) {
        return new StorageHealth(false, latency, detail);
    }
}

package dev.guard.spi;

import java.util.Arrays;
import java.util.Objects;

/**
 * A small record kept by the storage with a version for optimistic updates (the sender pool keeps its senders'
 * state in these). Versions start at 1 and grow by one with every successful {@link Storage#putRecord}.
 *
 * @param value the bytes, opaque to the storage
 * @param version the version of these bytes
 */
public record VersionedRecord(byte[] value, long version) {
    /**
     * Creates a record; the bytes are copied.
     *
     * @throws IllegalArgumentException if {@code version} is below 1, with the message {@code version must be at
     *     least 1 but was 0}
     * @throws NullPointerException if {@code value} is null
     */
    public VersionedRecord {
        value = Objects.requireNonNull(value, "value must not be null").clone();
        if (version < 1) {
            throw new IllegalArgumentException("version must be at least 1 but was " + version);
        }
    }

    /** The bytes, a copy: changing it changes nothing in this record. */
    @Override
    public byte[] value() {
        return value.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof VersionedRecord r && r.version == version && Arrays.equals(r.value, value);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(value) * 31 + Long.hashCode(version);
    }

    @Override
    public String toString() {
        return "VersionedRecord[" + value.length + " bytes, version=" + version + "]";
    }
}

package dev.guard.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class VersionedRecordTest {
    @Test
    void versionBelowOne_isRefusedNamingIt_asVersionsStartAtOne() {
        byte[] bytes = {1, 2};
        assertThatThrownBy(() -> new VersionedRecord(bytes, -5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("version must be at least 1 but was -5");
        assertThatThrownBy(() -> new VersionedRecord(bytes, 0))
                .as("0 is what a put expects of a record that does not exist yet, never a record's version")
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("version must be at least 1 but was 0");
        assertThat(new VersionedRecord(bytes, 1).version()).isEqualTo(1);
        assertThat(new VersionedRecord(bytes, Long.MAX_VALUE).version()).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void nullValue_isRefusedNamingIt() {
        assertThatThrownBy(() -> new VersionedRecord(null, 1))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("value must not be null");
    }
}

package dev.guard.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class FingerprintTest {

    @Test
    void of_isStableAcrossVersions_soProcessesSharingAStorageAgree() {
        // A changed fingerprint would let duplicates through during a rolling upgrade.
        assertThat(Fingerprint.of("hello")).isEqualTo(HELLO);
        assertThat(Fingerprint.of("")).isEqualTo(EMPTY);
        assertThat(Fingerprint.of("Привет 👋\n{}\"'")).isEqualTo(UNICODE);
    }

    private static final long HELLO = 4486369365746106L;
    private static final long EMPTY = 6667416852693323L;
    private static final long UNICODE = 458808510631621L;

    @Test
    void of_anyContent_isBelowTwoToTheFiftyThree() {
        for (String content : new String[] {"a", "message number 17", "x".repeat(10_000), "\0\uffff", ""}) {
            assertThat(Fingerprint.of(content)).isBetween(0L, (1L << 53) - 1);
        }
    }

    @Test
    void of_equalContentOfAnyCharSequenceType_givesEqualFingerprints() {
        assertThat(Fingerprint.of(new StringBuilder("same text"))).isEqualTo(Fingerprint.of("same text"));
        assertThat(Fingerprint.of("same text")).isNotEqualTo(Fingerprint.of("same text "));
    }

    @Test
    void of_manyNearlyEqualTexts_collideNever() {
        Set<Long> seen = new HashSet<>();
        for (int i = 0; i < 200_000; i++) {
            assertThat(seen.add(Fingerprint.of("message number " + i)))
                    .as("text %d", i)
                    .isTrue();
        }
        // The top bits vary too: the 53 bits are all used.
        assertThat(seen.stream().anyMatch(f -> f >= 1L << 52)).isTrue();
    }
}

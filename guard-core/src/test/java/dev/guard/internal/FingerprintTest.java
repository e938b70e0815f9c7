package dev.guard.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class FingerprintTest {

    @Test
    void of_isStableAcrossVersions_soProcessesSharingAStorageAgree() {
        // A changed fingerprint would let duplicates through during a rolling upgrade.
        assertThat(Fingerprint.of("hello")).isEqualTo(HELLO);
        assertThat(Fingerprint.of("")).isEqualTo(EMPTY);
        assertThat(Fingerprint.of("Привет 👋\n{}\"'")).isEqualTo(UNICODE);
    }

    // Computed by this version's Fingerprint (4 units per multiplication, since 2026-12-06); a change is a decision
    // (see the class's Javadoc on rolling upgrades), not a refactoring.
    private static final long HELLO = 7295110381493429L;
    private static final long EMPTY = 3511013027937935L;
    private static final long UNICODE = 2320830983419585L;

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
    void of_anyOneUnitChanged_atAnyPlaceOfAnyLength_changesTheFingerprint() {
        // Every length from 0 to 40 (whole words of four units, both lanes, every tail), each unit changed in turn.
        SplittableRandom random = new SplittableRandom(7);
        for (int length = 1; length <= 40; length++) {
            char[] text = new char[length];
            for (int i = 0; i < length; i++) {
                text[i] = (char) random.nextInt(Character.MAX_VALUE + 1);
            }
            long original = Fingerprint.of(new String(text));
            for (int i = 0; i < length; i++) {
                char kept = text[i];
                text[i] = (char) (kept ^ (1 << random.nextInt(16)));
                assertThat(Fingerprint.of(new String(text)))
                        .as("length %d, unit %d", length, i)
                        .isNotEqualTo(original);
                text[i] = kept;
            }
        }
    }

    @Test
    void of_textsThatDifferOnlyByTrailingZeroUnits_differ() {
        // The tail is padded with zero bits: the length keeps "a" apart from "a\0", and so on for every tail.
        Set<Long> seen = new HashSet<>();
        for (int zeros = 0; zeros <= 16; zeros++) {
            assertThat(seen.add(Fingerprint.of("a" + "\0".repeat(zeros))))
                    .as("%d zeros", zeros)
                    .isTrue();
            assertThat(seen.add(Fingerprint.of("\0".repeat(zeros))))
                    .as("only %d zeros", zeros)
                    .isTrue();
        }
    }

    @Test
    void of_manyRandomShortTexts_collideNever() {
        SplittableRandom random = new SplittableRandom(11);
        Set<Long> seen = new HashSet<>();
        Set<String> texts = new HashSet<>();
        for (int i = 0; i < 300_000; i++) {
            char[] text = new char[1 + random.nextInt(12)];
            for (int k = 0; k < text.length; k++) {
                text[k] = (char) (' ' + random.nextInt(95));
            }
            String t = new String(text);
            if (texts.add(t)) {
                assertThat(seen.add(Fingerprint.of(t))).as("text '%s'", t).isTrue();
            }
        }
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

package dev.guard.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class FingerprintTest {

    @Test
    void of_isStableAcrossVersions_soProcessesSharingAStorageAgree() {
        // Values of the first release: a changed fingerprint would let duplicates through during a rolling upgrade.
        assertThat(Fingerprint.of("hello")).isEqualTo("16fe05a1c75bcd0f22b0d67b4be53c16");
        assertThat(Fingerprint.of("")).isEqualTo("f52a15e9a9b5e89b8dfda0d242ae1209");
        assertThat(Fingerprint.of("Привет 👋\n{}\"'")).isEqualTo("617c876f5308c7fd6bf77e3363b610e8");
    }

    @Test
    void of_anyContent_isThirtyTwoLowercaseHexDigits() {
        for (String content : new String[] {"a", "message number 17", "x".repeat(10_000), "\0\uffff"}) {
            assertThat(Fingerprint.of(content)).hasSize(32).matches("[0-9a-f]{32}");
        }
    }

    @Test
    void of_equalContentOfAnyCharSequenceType_givesEqualFingerprints() {
        assertThat(Fingerprint.of(new StringBuilder("same text"))).isEqualTo(Fingerprint.of("same text"));
        assertThat(Fingerprint.of("same text")).isNotEqualTo(Fingerprint.of("same text "));
    }

    @Test
    void write_atAnOffset_writesTheSameDigitsAndAnswersTheEnd() {
        char[] into = "<<<<".concat(".".repeat(40)).toCharArray();
        int end = Fingerprint.write("hello", into, 4);
        assertThat(end).isEqualTo(4 + Fingerprint.LENGTH);
        assertThat(new String(into, 4, Fingerprint.LENGTH)).isEqualTo("16fe05a1c75bcd0f22b0d67b4be53c16");
        assertThat(new String(into, 0, 4)).isEqualTo("<<<<");
        assertThat(new String(into, end, into.length - end)).isEqualTo("........");
    }
}

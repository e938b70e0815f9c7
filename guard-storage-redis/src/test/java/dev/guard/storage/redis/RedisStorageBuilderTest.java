package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import org.junit.jupiter.api.Test;

/** Configuration errors fail at once, naming the setting and the value, and never print a password. */
class RedisStorageBuilderTest {
    private final RedisStorage.Builder builder = RedisStorage.builder("redis://127.0.0.1:6379");

    @Test
    void builder_blankUri_isRejected() {
        assertThatThrownBy(() -> RedisStorage.builder(" "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("uri must not be blank but was ' '");
        assertThatThrownBy(() -> RedisStorage.create((String) null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("uri must not be blank but was null");
    }

    @Test
    void build_uriThatIsNotRedis_isRejectedWithoutItsPassword() {
        assertThatThrownBy(() -> RedisStorage.create("http://user:s3cret@127.0.0.1:6379"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("uri is not a Redis URI: http://***@127.0.0.1:6379")
                .hasNoCause();
        // A URI too malformed to parse keeps its password out of the message too.
        assertThatThrownBy(() -> RedisStorage.create("redis:/:S3CRETpw@127.0.0.1:6379"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("uri is not a Redis URI: ***@127.0.0.1:6379");
    }

    @Test
    void build_unreachableRedisWithPassword_failsWithoutThePassword() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        assertThatThrownBy(() -> RedisStorage.builder("redis://guard:s3cret@127.0.0.1:1")
                        .timeout(Duration.ofMillis(200))
                        .build())
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis connect failed: ")
                .satisfies(e -> {
                    for (Throwable t = e; t != null; t = t.getCause()) {
                        assertThat(String.valueOf(t.getMessage())).doesNotContain("s3cret");
                    }
                });
    }

    @Test
    void build_passwordWithAnUnencodedHashQuestionMarkOrSlash_isRejectedWithoutAnyPartOfIt() {
        // '#', '?' and '/' end a URI's authority: "default:99#s3cret@127.0.0.1" was parsed as host "default", port 99,
        // no password, and the connect failure said "Unable to connect to default/<unresolved>:99".
        for (String uri : new String[] {
            "redis://default:99#s3cret@127.0.0.1:6379",
            "redis://pw99#s3cret@127.0.0.1:6379",
            "rediss://:pw99?s3cret@127.0.0.1:6379",
            "redis://:pw99#s3cret@127.0.0.1:6379/0"
        }) {
            assertThatThrownBy(() -> RedisStorage.builder(uri)
                            .timeout(Duration.ofMillis(200))
                            .build())
                    .as(uri)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("uri is not a Redis URI (percent-encode '#', '?' and '/' in a user name or"
                            + " password: %23, %3F, %2F): ")
                    .hasMessageEndingWith("***@127.0.0.1:6379" + (uri.endsWith("/0") ? "/0" : ""))
                    .hasNoCause()
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("99"));
        }
    }

    @Test
    void timeout_notPositive_isRejected() {
        assertThatThrownBy(() -> builder.timeout(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("timeout must be positive but was PT0S");
        assertThatThrownBy(() -> builder.timeout(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("timeout must be positive but was null");
    }

    @Test
    void timeout_pastWhatLettuceTakes_isRejectedAtOnce() {
        // 2^31 ms used to pass here and fail build() with "redis connect failed: integer overflow", blaming Redis: the
        // connect timeout reaches Netty as an int of milliseconds.
        Duration first = Duration.ofMillis(1L << 31);
        assertThatThrownBy(() -> builder.timeout(first))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("timeout must be shorter than 2^31 milliseconds (about 24.8 days) but was " + first);
        assertThatThrownBy(() -> builder.timeout(ChronoUnit.FOREVER.getDuration()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("timeout must be shorter than 2^31 milliseconds");
    }

    @Test
    void timeout_longestAccepted_isOneLettuceTakes() {
        Duration longest = Duration.ofMillis(1L << 31).minusNanos(1);
        assertThat(builder.timeout(longest)).isSameAs(builder);
        StateKey key = new StateKey("bucket", "user-1");
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofMinutes(1));
        long now = ManualTicker.create().epochMicros();
        for (String uri : new String[] {RedisServers.standalone(), RedisServers.cluster()}) {
            try (RedisStorage storage = RedisStorage.builder(uri)
                    .keyPrefix(Target.freshPrefix())
                    .timeout(longest)
                    .build()) {
                try {
                    assertThat(storage.acquire(key, bucket, 1, now)).isEqualTo(Outcome.admitted(2));
                    assertThat(storage.health().up()).as("health on %s", uri).isTrue();
                } finally {
                    assertThat(storage.forget("user-1")).isOne();
                }
            }
        }
    }

    @Test
    void expiryMargin_pastWhatARedisExpiryHolds_isRejectedAtOnce() {
        // FOREVER used to pass here and fail build() with an ArithmeticException after connecting, leaving the
        // storage's client and its threads running; Long.MAX_VALUE ms made Redis refuse every write ("invalid expire
        // time").
        Duration forever = ChronoUnit.FOREVER.getDuration();
        assertThatThrownBy(() -> builder.expiryMargin(forever))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("expiryMargin must be shorter than 2^53 microseconds (about 285 years) but was " + forever);
        assertThatThrownBy(() -> builder.expiryMargin(Duration.ofMillis(Long.MAX_VALUE)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> builder.expiryMargin(Duration.of(LimitSpec.EXACT_LIMIT, ChronoUnit.MICROS)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void expiryMargin_longestAccepted_isOneThatRedisTakes() {
        Duration longest = Duration.of(LimitSpec.EXACT_LIMIT - 1, ChronoUnit.MICROS);
        StateKey key = new StateKey("bucket", "user-1");
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofMinutes(1));
        long now = ManualTicker.create().epochMicros();
        try (RedisStorage storage = RedisStorage.builder(RedisServers.standalone())
                .keyPrefix(Target.freshPrefix())
                .expiryMargin(longest)
                .build()) {
            try {
                assertThat(storage.acquire(key, bucket, 1, now)).isEqualTo(Outcome.admitted(2));
                assertThat(storage.raiseGate(key, now + 1_000_000, now)).isEqualTo(now + 1_000_000);
            } finally {
                assertThat(storage.forget("user-1")).isOne();
            }
        }
    }

    @Test
    void redact_uriWithCredentials_hidesThem() {
        assertThat(RedisStorage.redact("redis://default:pw@host:6379/0")).isEqualTo("redis://***@host:6379/0");
        assertThat(RedisStorage.redact("redis://host:6379")).isEqualTo("redis://host:6379");
        // Malformed URIs, which the builder's error message quotes, and a password as a query parameter.
        assertThat(RedisStorage.redact("redis:/:S3CRETpw@127.0.0.1:6379")).isEqualTo("***@127.0.0.1:6379");
        assertThat(RedisStorage.redact("redis//:S3CRETpw@127.0.0.1:6379")).isEqualTo("***@127.0.0.1:6379");
        assertThat(RedisStorage.redact("redis://127.0.0.1:6379?password=S3CRETpw&timeout=5s"))
                .isEqualTo("redis://127.0.0.1:6379?password=***&timeout=5s");
    }
}

package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * An asynchronous call's answer always completes the caller's stage, whatever turning it into an outcome throws: a
 * throwable that escaped the answer's callback would be lost, and the caller would wait for ever. No Redis needed.
 */
class RedisStorageCompletionTest {

    @Test
    void completeWith_anAnswerMadeIntoAValue_completesWithIt() {
        CompletableFuture<Long> result = new CompletableFuture<>();

        RedisStorage.completeWith(result, value -> value[0] + 1, new long[] {41}, e -> e);

        assertThat(result).isCompletedWithValue(42L);
    }

    @Test
    void completeWith_aMapThatThrowsAnException_completesWithTheFailureMadeOfIt() {
        CompletableFuture<Long> result = new CompletableFuture<>();
        IllegalStateException thrown = new IllegalStateException("an answer of another shape");

        RedisStorage.completeWith(
                result,
                throwing(thrown),
                new long[0],
                e -> new IllegalArgumentException("made of " + e.getMessage(), e));

        assertThat(result)
                .failsWithin(Duration.ZERO)
                .withThrowableOfType(ExecutionException.class)
                .havingCause()
                .isInstanceOf(IllegalArgumentException.class)
                .withMessage("made of an answer of another shape");
    }

    @Test
    void completeWith_aMapThatThrowsAnError_completesWithTheErrorItself() {
        CompletableFuture<Long> result = new CompletableFuture<>();
        StackOverflowError error = new StackOverflowError("deep");

        RedisStorage.completeWith(result, throwing(error), new long[0], e -> e);

        assertThat(result).isCompletedExceptionally();
        assertThat(result.handle((value, failure) -> failure).join()).isSameAs(error);
    }

    /** A map of answers that throws {@code thrown} (an exception or an error). */
    private static Function<long[], Long> throwing(Throwable thrown) {
        return value -> {
            if (thrown instanceof Error e) {
                throw e;
            }
            throw (RuntimeException) thrown;
        };
    }
}

package dev.guard.storage.redis;

import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisAdvancedClusterAsyncCommands;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * How a storage calls its {@link RedisScript operations} on its connection: {@code FCALL} of the Functions library
 * where the server has Functions (Redis 7 and later), else {@code EVALSHA} of the scripts. Either way one command
 * per call, and what a server lost is sent again without the caller noticing.
 *
 * <ul>
 *   <li>Functions: the library is loaded ({@code FUNCTION LOAD REPLACE}) when the storage is built, on every master
 *       of a Cluster. A server that answers {@code Function not found} (it restarted without persistence, was flushed,
 *       or is a master that joined later) gets the library again, on every master (one load shared by the calls that
 *       failed meanwhile), and the call is repeated once, even if some other master could not load it; the calls go
 *       again in the order they failed, which on one connection is the order they were made.
 *   <li>Scripts: a server that answers {@code NOSCRIPT} gets the call again as {@code EVAL}, which also caches the
 *       script there.
 * </ul>
 *
 * <p>Thread-safe; nothing blocks.
 */
final class LuaCalls {
    private final RedisClusterAsyncCommands<byte[], byte[]> commands;
    private final boolean functions;

    /**
     * The library load in flight, if any: the calls that find the library missing at the same time (every call in
     * flight when a master restarts) share one load instead of each compiling the library on every master.
     */
    private final AtomicReference<Load> loading = new AtomicReference<>();

    /**
     * A load of the library and the calls waiting to be sent again once it completes, in the order they failed: each
     * call is sent after the one before it, as they were first sent (a CompletableFuture runs its dependents last
     * first, so the calls of two messages of one user, waiting on the load alone, swapped their decisions).
     */
    private static final class Load {
        final CompletableFuture<?> done;

        /** Completes once the last call queued behind this load has been sent again. */
        final AtomicReference<CompletableFuture<?>> last;

        Load(CompletableFuture<?> done) {
            this.done = done;
            this.last = new AtomicReference<>(done);
        }
    }

    LuaCalls(RedisClusterAsyncCommands<byte[], byte[]> commands, boolean functions) {
        this.commands = commands;
        this.functions = functions;
    }

    /** Whether calls are {@code FCALL}s of the library (else {@code EVALSHA}s). */
    boolean functions() {
        return functions;
    }

    /**
     * Sends one call: {@code FCALL} or {@code EVALSHA}. The future fails as Redis answered, including the failures
     * that {@link #recoverable} names.
     */
    <T> RedisFuture<T> send(RedisScript script, ScriptOutputType type, byte[][] keys, byte[]... args) {
        if (functions) {
            return commands.fcall(script.function(), type, keys, args);
        }
        return commands.evalsha(script.sha(), type, keys, args);
    }

    /** Whether the library is being loaded again after a server lost it (calls then queue behind the load). */
    boolean reloading() {
        return functions && loading.get() != null;
    }

    /** Whether {@code error} says that the server lacks this storage's code, which {@link #resend} cures. */
    boolean recoverable(Throwable error) {
        Throwable cause = unwrap(error);
        if (functions) {
            return cause instanceof RedisCommandExecutionException
                    && cause.getMessage() != null
                    && cause.getMessage().startsWith("ERR Function not found");
        }
        return cause instanceof RedisNoScriptException;
    }

    /**
     * After a {@link #recoverable} failure: sends the code (the library, or the script's text) and calls again. When
     * the returned future fails first (a caller's timeout) or is cancelled, the call is cancelled, or never sent.
     */
    <T> CompletableFuture<T> resend(RedisScript script, ScriptOutputType type, byte[][] keys, byte[]... args) {
        if (functions) {
            // Call again whatever the load answered: a Cluster load fails as a whole when any one master is down,
            // while the master of these keys may have the library again; if it does not, this call fails as before.
            CompletableFuture<T> again = new CompletableFuture<>();
            CompletableFuture<Void> sent = new CompletableFuture<>();
            CompletableFuture<?> previous = queueBehindLoad(sent);
            previous.whenComplete((ignored, failure) -> {
                try {
                    if (!again.isDone()) {
                        RedisFuture<T> call = commands.fcall(script.function(), type, keys, args);
                        cancelOnFailure(again, call);
                        call.whenComplete((value, error) -> {
                            if (error != null) {
                                again.completeExceptionally(error);
                            } else {
                                again.complete(value);
                            }
                        });
                    }
                } catch (RuntimeException e) {
                    again.completeExceptionally(e);
                } finally {
                    // Also when the caller gave up before its turn: the calls queued behind it go on.
                    sent.complete(null);
                }
            });
            return again;
        }
        // The command itself: a caller's timeout or cancel completes it, and Lettuce never sends a completed command.
        return commands.<T>eval(script.body(), type, keys, args).toCompletableFuture();
    }

    /**
     * Sends one call and, when the server lacks the code, sends the code and calls once more. When the returned future
     * fails first (a caller's timeout) or is cancelled, the commands are cancelled: a connection that queues commands
     * while disconnected (Lettuce's default) would otherwise send one after it reconnects, and take permits for a call
     * whose caller was told it failed.
     */
    <T> CompletableFuture<T> run(RedisScript script, ScriptOutputType type, byte[][] keys, byte[]... args) {
        if (reloading()) {
            // Behind the calls that wait for the library to be loaded again, as if this one had failed too: sent now,
            // it could reach the server after the load and before them, and decide ahead of earlier decisions.
            return this.<T>resend(script, type, keys, args);
        }
        CompletableFuture<Void> abandoned = new CompletableFuture<>();
        CompletableFuture<T> call = this.<T>send(script, type, keys, args).toCompletableFuture();
        abandoned.thenRun(() -> call.cancel(false));
        CompletableFuture<T> result = call.exceptionallyCompose(e -> {
            if (!recoverable(e)) {
                return CompletableFuture.failedFuture(unwrap(e));
            }
            CompletableFuture<T> again = this.<T>resend(script, type, keys, args);
            abandoned.thenRun(() -> again.cancel(false));
            return again;
        });
        result.whenComplete((value, failure) -> {
            if (failure != null) {
                abandoned.complete(null);
            }
        });
        return result;
    }

    /** Cancels {@code command} when {@code caller} fails or is cancelled; a command already answered stays as it is. */
    private static void cancelOnFailure(CompletableFuture<?> caller, RedisFuture<?> command) {
        caller.whenComplete((value, failure) -> {
            if (failure != null) {
                command.cancel(false);
            }
        });
    }

    /**
     * Puts a call to send again ({@code sent} completes once it has been) in the queue behind the load in flight, or
     * behind a new load that later callers share until it completes; answers what it waits for (the load, or the call
     * queued before it). A new load starts only once its first call is queued, so that a load that completes at once
     * cannot leave that call out of the queue while a later call goes straight out ahead of it.
     */
    private CompletableFuture<?> queueBehindLoad(CompletableFuture<Void> sent) {
        while (true) {
            Load current = loading.get();
            if (current != null) {
                return current.last.getAndSet(sent);
            }
            CompletableFuture<Object> done = new CompletableFuture<>();
            Load mine = new Load(done);
            if (loading.compareAndSet(null, mine)) {
                CompletableFuture<?> previous = mine.last.getAndSet(sent);
                CompletableFuture<?> load;
                try {
                    load = loadLibrary();
                } catch (RuntimeException e) {
                    // Refused at once (a full request queue, a closed connection): a load that failed, or the reload
                    // would stay pending for ever and every later call would wait behind it.
                    load = CompletableFuture.failedFuture(e);
                }
                load.whenComplete((result, failure) -> {
                    if (failure != null) {
                        done.completeExceptionally(failure);
                    } else {
                        done.complete(result);
                    }
                    endWhenSent(mine);
                });
                return previous;
            }
        }
    }

    /**
     * Ends {@code load} (new calls then go straight out) once every call queued behind it has been sent again, also
     * those queued while the queue is being sent: ended before, a call made meanwhile (another thread's, or one made as
     * they are sent, or one whose caller has not yet joined the queue when the load completes at once) would go out
     * ahead of them.
     */
    private void endWhenSent(Load load) {
        CompletableFuture<?> tail = load.last.get();
        tail.whenComplete((ignored, failure) -> {
            if (load.last.get() == tail) {
                loading.compareAndSet(load, null);
            } else {
                endWhenSent(load);
            }
        });
    }

    /**
     * Loads the library on the server, on every master of a Cluster; replacing a library of the same name is harmless,
     * since the name holds the code's digest.
     */
    CompletableFuture<?> loadLibrary() {
        if (commands instanceof RedisAdvancedClusterAsyncCommands<byte[], byte[]> cluster) {
            // FUNCTION LOAD goes to one node of its own accord; each master needs the library.
            return cluster.upstream()
                    .commands()
                    .functionLoad(RedisScript.LIBRARY, true)
                    .toCompletableFuture();
        }
        return commands.functionLoad(RedisScript.LIBRARY, true).toCompletableFuture();
    }

    /** Whether {@code error}, the answer to {@code FUNCTION LOAD}, says the server has no Functions for this client. */
    static boolean unsupported(Throwable error) {
        Throwable cause = unwrap(error);
        String message = cause.getMessage();
        return cause instanceof RedisCommandExecutionException
                && message != null
                && (message.startsWith("ERR unknown command") || message.startsWith("NOPERM"));
    }

    static Throwable unwrap(Throwable error) {
        Throwable cause = error;
        while ((cause instanceof CompletionException || cause instanceof ExecutionException)
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause;
    }
}

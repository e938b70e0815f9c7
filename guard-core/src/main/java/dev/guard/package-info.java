/**
 * Guard's entry points: {@link dev.guard.Guard} (a chain of filters around a bot's handler, one {@link
 * dev.guard.Decision} per message), {@link dev.guard.Debouncer} (trailing-edge bursts), the {@link dev.guard.Ticker}
 * that every decision reads time from, and {@link dev.guard.ManualTicker} for tests.
 *
 * <p>Design notes. Local filters run before the one storage call, because they are free and a rejection there must
 * not cost a round trip. The stateful filters are evaluated as one atomic batch, all-or-nothing, because a message
 * rejected by one filter must not consume quota in another (a duplicate must not eat the token bucket). Storage
 * failures become decisions under a {@link dev.guard.FailurePolicy} behind a breaker, because a rate limiter must
 * never be the reason a bot stops answering.
 */
package dev.guard;

/**
 * The storage SPI: what a backend implements ({@link dev.guard.spi.Storage}) and the values it exchanges.
 *
 * <p>Why algorithm-aware: a "read, compute in Java, compare-and-set" SPI costs two or three round trips per
 * decision and livelocks on hot keys. Here the backend receives the whole batch and the time and evaluates every
 * step where the state lives, in one round trip. {@link dev.guard.spi.ReferenceStorage} is the literal model that
 * the contract suite compares every backend with.
 *
 * <p>A batch travels as an immutable {@link dev.guard.spi.Batch} answered by a {@link dev.guard.spi.BatchResult}, or,
 * on the per-message path, as a caller's reusable {@link dev.guard.spi.BatchBuffer} that
 * {@link dev.guard.spi.Storage#evaluateInPlace} fills with the outcomes: a backend that evaluates in memory then
 * creates no object per decision for the batch. The default of {@code evaluateInPlace} goes through {@code evaluate},
 * so a backend implements only that.
 */
package dev.guard.spi;

/**
 * The storage SPI: what a backend implements ({@link dev.guard.spi.Storage}) and the values it exchanges.
 *
 * <p>Why algorithm-aware: a "read, compute in Java, compare-and-set" SPI costs two or three round trips per
 * decision and livelocks on hot keys. Here the backend receives the whole batch and the time and evaluates every
 * step where the state lives, in one round trip. {@link dev.guard.spi.ReferenceStorage} is the literal model that
 * the contract suite compares every backend with.
 */
package dev.guard.spi;

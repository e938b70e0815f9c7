package dev.guard.limit;

/**
 * One request of a generated history: ask for {@code permits} at {@code atMicros}.
 *
 * @param atMicros when, in epoch microseconds
 * @param permits how many permits; zero only looks
 */
record Request(long atMicros, long permits) {}

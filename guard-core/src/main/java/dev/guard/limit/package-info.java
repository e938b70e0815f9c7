/**
 * Limit specifications and their reference semantics: pure functions over a {@code long[]} state, in exact integer
 * arithmetic below 2<sup>53</sup> so that Lua and SQL implementations can match them bit for bit. The memory
 * storage runs these functions; the other backends run equivalents, and the contract suite's differential test holds
 * them to identical decisions.
 */
package dev.guard.limit;

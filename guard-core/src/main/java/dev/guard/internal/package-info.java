/** Guard's internals: not API, may change in any release. */
package dev.guard.internal;

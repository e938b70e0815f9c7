package dev.guard.storage.redis;

import dev.guard.storage.tck.RequiredServer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A private redis-server on a free loopback port that a test starts, stops and restarts itself: for failure tests,
 * and for command counts that no other client can disturb. The binary is {@code GUARD_REDIS_SERVER} (default
 * {@code redis-server} on the PATH); without it the test skips, and under {@code CI=true} it fails.
 */
final class RedisProcess implements AutoCloseable {
    private static final String BINARY = RequiredServer.env("GUARD_REDIS_SERVER", "redis-server");
    private static final long START_SECONDS = 10;

    private final int port;
    private final Path dir;
    private Process process;

    private RedisProcess(int port, Path dir) {
        this.port = port;
        this.dir = dir;
    }

    /** Starts a server on a free loopback port and waits until it accepts connections. */
    static RedisProcess start() {
        int port;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free loopback port", e);
        }
        try {
            RedisProcess redis = new RedisProcess(port, Files.createTempDirectory("guard-redis-"));
            redis.restart();
            return redis;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a directory for redis-server", e);
        }
    }

    /** {@code redis://127.0.0.1:<port>}. */
    String uri() {
        return "redis://127.0.0.1:" + port;
    }

    int port() {
        return port;
    }

    /** Starts the server again on the same port (with no data: nothing is persisted) and waits until it is ready. */
    void restart() {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("redis-server on port " + port + " is running");
        }
        Process started;
        try {
            started = new ProcessBuilder(List.of(
                            BINARY,
                            "--port",
                            Integer.toString(port),
                            "--bind",
                            "127.0.0.1",
                            "--dir",
                            dir.toString(),
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--enable-debug-command",
                            "yes"))
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            RequiredServer.assume(
                    "redis-server (" + BINARY + ")", false, "install redis-server or set GUARD_REDIS_SERVER", e);
            throw new UncheckedIOException(e);
        }
        process = started;
        CountDownLatch ready = new CountDownLatch(1);
        Thread drain = new Thread(
                () -> {
                    // Reads the log to its end, so that the server never blocks on a full pipe.
                    try (BufferedReader log = new BufferedReader(
                            new InputStreamReader(started.getInputStream(), StandardCharsets.UTF_8))) {
                        for (String line = log.readLine(); line != null; line = log.readLine()) {
                            if (line.contains("Ready to accept connections")) {
                                ready.countDown();
                            }
                        }
                    } catch (IOException e) {
                        // The process ended; nothing more to read.
                    }
                },
                "redis-server-" + port);
        drain.setDaemon(true);
        drain.start();
        try {
            if (!ready.await(START_SECONDS, TimeUnit.SECONDS)) {
                started.destroyForcibly();
                throw new IllegalStateException(
                        "redis-server on port " + port + " was not ready within " + START_SECONDS + " s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while starting redis-server", e);
        }
    }

    /** Shuts the server down (SIGTERM) and waits until it has exited. */
    void stop() {
        end(false);
    }

    /** Kills the server (SIGKILL): connections drop without a goodbye, as when a machine dies. */
    void kill() {
        end(true);
    }

    private void end(boolean forcibly) {
        if (process == null) {
            return;
        }
        if (forcibly) {
            process.destroyForcibly();
        } else {
            process.destroy();
        }
        try {
            if (!process.waitFor(START_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while stopping redis-server", e);
        }
    }

    @Override
    public void close() {
        kill();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder())
                    .forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // A temp directory that outlives the test is harmless.
        }
    }
}

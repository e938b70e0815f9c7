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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
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
    private final int busPort;
    private final Path dir;
    private final List<String> command;
    private final String readyLine;
    /** Log lines a test waits for: each latch opens when a line holding its text is logged. */
    private final List<Expected> expected = new CopyOnWriteArrayList<>();

    private Process process;

    private record Expected(String text, CountDownLatch seen) {}

    private RedisProcess(int port, int busPort, Path dir, List<String> command, String readyLine) {
        this.port = port;
        this.busPort = busPort;
        this.dir = dir;
        this.command = command;
        this.readyLine = readyLine;
    }

    /** Starts a server on a free loopback port and waits until it accepts connections. */
    static RedisProcess start() {
        int port = freePort();
        Path dir = tempDir();
        return started(new RedisProcess(
                port,
                0,
                dir,
                serverCommand(port, dir, "--enable-debug-command", "yes"),
                "Ready to accept connections"));
    }

    /**
     * Starts a server in cluster mode, its cluster bus on a second free loopback port, that knows no other node and
     * serves no slot yet (see {@link PrivateCluster}). Its node id lives in its directory, so a restart keeps it.
     */
    static RedisProcess startClusterNode() {
        int port = freePort();
        int busPort = freePort();
        while (busPort == port) {
            busPort = freePort();
        }
        Path dir = tempDir();
        List<String> command = serverCommand(
                port,
                dir,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                Integer.toString(busPort),
                "--cluster-node-timeout",
                "5000");
        return started(new RedisProcess(port, busPort, dir, command, "Ready to accept connections"));
    }

    /** A server on loopback {@code port} that keeps nothing on disk but in {@code dir}, then {@code more} options. */
    private static List<String> serverCommand(int port, Path dir, String... more) {
        List<String> command = new ArrayList<>(List.of(
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
                "no"));
        command.addAll(List.of(more));
        return command;
    }

    /** Starts a Sentinel that monitors {@code master} as {@code mymaster}, with a quorum of one. */
    static RedisProcess startSentinel(RedisProcess master) {
        int port = freePort();
        Path dir = tempDir();
        Path config = dir.resolve("sentinel.conf");
        try {
            Files.writeString(
                    config,
                    "port " + port + "\nbind 127.0.0.1\ndir " + dir + "\n" + "sentinel monitor mymaster 127.0.0.1 "
                            + master.port() + " 1\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + config, e);
        }
        return started(new RedisProcess(
                port, 0, dir, List.of(BINARY, config.toString(), "--sentinel"), "+monitor master mymaster"));
    }

    private static RedisProcess started(RedisProcess redis) {
        try {
            redis.restart();
            return redis;
        } catch (RuntimeException | Error e) {
            redis.close();
            throw e;
        }
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free loopback port", e);
        }
    }

    private static Path tempDir() {
        try {
            return Files.createTempDirectory("guard-redis-");
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

    /** The port of a cluster node's bus; 0 for a server not in cluster mode. */
    int busPort() {
        return busPort;
    }

    /**
     * A latch that opens when the server logs a line holding {@code text} from now on: call it before the command
     * whose effect the line reports.
     */
    CountDownLatch expectLine(String text) {
        CountDownLatch seen = new CountDownLatch(1);
        expected.add(new Expected(text, seen));
        return seen;
    }

    /** Starts the server again on the same port (with no data: nothing is persisted) and waits until it is ready. */
    void restart() {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("redis-server on port " + port + " is running");
        }
        Process started;
        try {
            started = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            RequiredServer.assume(
                    "redis-server (" + BINARY + ")", false, "install redis-server or set GUARD_REDIS_SERVER", e);
            throw new UncheckedIOException(e);
        }
        process = started;
        CountDownLatch ready = new CountDownLatch(1);
        StringBuffer log = new StringBuffer();
        Thread drain = new Thread(
                () -> {
                    // Reads the log to its end, so that the server never blocks on a full pipe.
                    try (BufferedReader lines = new BufferedReader(
                            new InputStreamReader(started.getInputStream(), StandardCharsets.UTF_8))) {
                        for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                            if (ready.getCount() > 0) {
                                log.append(line).append('\n');
                            }
                            if (line.contains(readyLine)) {
                                ready.countDown();
                            }
                            for (Expected wanted : expected) {
                                if (line.contains(wanted.text())) {
                                    wanted.seen().countDown();
                                }
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
                        "redis-server on port " + port + " was not ready within " + START_SECONDS + " s:\n" + log);
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

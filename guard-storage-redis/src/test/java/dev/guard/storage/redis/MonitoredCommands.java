package dev.guard.storage.redis;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;

/**
 * The commands that Redis servers executed on keys with a given prefix, read from {@code MONITOR}: unlike {@code INFO
 * commandstats}, other clients of a shared server (another build's tests on the same Cluster) cannot disturb the
 * count. Commands that clients sent and commands that scripts ran are counted apart.
 */
final class MonitoredCommands implements AutoCloseable {
    private final List<Socket> monitors = new ArrayList<>();
    private final List<BufferedReader> readers = new ArrayList<>();
    private final List<String> uris;
    private final String prefix;

    /** Starts monitoring the servers at {@code uris} for commands that name a key starting with {@code prefix}. */
    MonitoredCommands(List<String> uris, String prefix) {
        this.uris = uris;
        this.prefix = prefix;
        for (String uri : uris) {
            Socket socket = open(uri);
            monitors.add(socket);
            BufferedReader reader = reader(socket);
            readers.add(reader);
            send(socket, "MONITOR");
            expect(reader, "+OK");
        }
    }

    /**
     * The commands executed since the last call (or since monitoring began), by name: {@code fcall} for what clients
     * sent, {@code lua:get} for what scripts ran. Waits for a marker sent after them, so none is missed.
     */
    Map<String, Long> drain() {
        Map<String, Long> counts = new HashMap<>();
        String marker = "marker-" + UUID.randomUUID();
        for (int i = 0; i < uris.size(); i++) {
            try (Socket ping = open(uris.get(i))) {
                send(ping, "PING " + marker);
                expect(reader(ping), "$" + marker.length());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            BufferedReader reader = readers.get(i);
            for (String line = readLine(reader); !line.contains(marker); line = readLine(reader)) {
                // +<time> [<db> <client or lua>] "<command>" "<arg>" ...
                int open = line.indexOf('[');
                int close = line.indexOf(']', open);
                int quote = line.indexOf('"', close);
                if (open < 0 || close < 0 || quote < 0 || !line.contains("\"" + prefix)) {
                    continue;
                }
                String command =
                        line.substring(quote + 1, line.indexOf('"', quote + 1)).toLowerCase(Locale.ROOT);
                String name = line.substring(open, close).contains(" lua") ? "lua:" + command : command;
                counts.merge(name, 1L, Long::sum);
            }
        }
        return counts;
    }

    private static Socket open(String uri) {
        URI parsed = URI.create(uri);
        try {
            Socket socket = new Socket(parsed.getHost(), parsed.getPort());
            socket.setSoTimeout(10_000);
            return socket;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot connect to " + uri, e);
        }
    }

    private static BufferedReader reader(Socket socket) {
        try {
            return new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.ISO_8859_1));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void send(Socket socket, String inline) {
        try {
            OutputStream out = socket.getOutputStream();
            out.write((inline + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void expect(BufferedReader reader, String first) {
        String line = readLine(reader);
        if (!line.equals(first)) {
            throw new IllegalStateException("expected " + first + " from Redis but read " + line);
        }
    }

    private static String readLine(BufferedReader reader) {
        try {
            String line = reader.readLine();
            if (line == null) {
                throw new IllegalStateException("Redis closed the connection");
            }
            return line;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        for (Socket socket : monitors) {
            try {
                socket.close();
            } catch (IOException e) {
                // Closing a monitor that is gone already: nothing to release.
            }
        }
    }
}

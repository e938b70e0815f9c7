package dev.guard.storage.jdbc;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP proxy on a loopback port in front of a database server that can fall silent: from {@link #silence()} on it
 * forwards nothing in either direction and answers nothing, while every connection stays open, as when the server's
 * host dies or the network between drops packets. Nothing is refused or reset, so only a timeout can end a wait.
 */
final class SilentNetworkProxy implements AutoCloseable {
    private final InetSocketAddress target;
    private final ServerSocket server;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private volatile boolean silent;
    private volatile boolean closed;

    SilentNetworkProxy(String host, int port) throws IOException {
        this.target = new InetSocketAddress(host, port);
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread acceptor = new Thread(this::accept, "silent-proxy-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /** The port to connect to instead of the server's. */
    int port() {
        return server.getLocalPort();
    }

    /** Stops forwarding: bytes sent from now on go nowhere, new connections are accepted and never answered. */
    void silence() {
        silent = true;
    }

    private void accept() {
        while (!closed) {
            try {
                Socket client = server.accept();
                sockets.add(client);
                if (silent) {
                    continue; // accepted, held open, never answered
                }
                Socket upstream = new Socket();
                upstream.connect(target);
                sockets.add(upstream);
                pump(client, upstream);
                pump(upstream, client);
            } catch (IOException e) {
                if (closed) {
                    return;
                }
            }
        }
    }

    private void pump(Socket from, Socket to) {
        Thread t = new Thread(
                () -> {
                    byte[] buf = new byte[8192];
                    try (InputStream in = from.getInputStream()) {
                        OutputStream out = to.getOutputStream();
                        int n;
                        while ((n = in.read(buf)) >= 0) {
                            if (!silent) {
                                out.write(buf, 0, n);
                                out.flush();
                            }
                        }
                    } catch (IOException e) {
                        // one side closed: the proxy closes both when it closes
                    }
                },
                "silent-proxy-pump");
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void close() throws IOException {
        closed = true;
        server.close();
        for (Socket s : sockets) {
            try {
                s.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
    }
}

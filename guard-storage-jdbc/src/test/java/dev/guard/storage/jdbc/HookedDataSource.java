package dev.guard.storage.jdbc;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.sql.DataSource;

/**
 * Runs a hook once, right after the first query prepared with SQL that contains a marker has executed: on the
 * caller's thread, while that query's transaction is still open and holds whatever it locked.
 */
final class HookedDataSource extends WrappingDataSource {
    private final String marker;
    private final Runnable hook;
    private final AtomicBoolean ran = new AtomicBoolean();

    HookedDataSource(DataSource target, String marker, Runnable hook) {
        super(target);
        this.marker = marker;
        this.hook = hook;
    }

    /** Whether the hook has run. */
    boolean ran() {
        return ran.get();
    }

    @Override
    Connection wrap(Connection connection) {
        InvocationHandler handler = (proxy, method, args) -> {
            Object result = invoke(method, connection, args);
            if (method.getName().equals("prepareStatement")
                    && args != null
                    && args[0] instanceof String sql
                    && sql.contains(marker)) {
                return hooked((PreparedStatement) result);
            }
            return result;
        };
        return (Connection)
                Proxy.newProxyInstance(Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, handler);
    }

    private PreparedStatement hooked(PreparedStatement statement) {
        InvocationHandler handler = (proxy, method, args) -> {
            Object result = invoke(method, statement, args);
            if (method.getName().equals("executeQuery") && ran.compareAndSet(false, true)) {
                hook.run();
            }
            return result;
        };
        return (PreparedStatement) Proxy.newProxyInstance(
                PreparedStatement.class.getClassLoader(), new Class<?>[] {PreparedStatement.class}, handler);
    }
}

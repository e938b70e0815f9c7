package dev.guard.storage.jdbc;

import java.io.PrintWriter;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import javax.sql.DataSource;

/**
 * Counts what a storage sends to the database: statement executions (a JDBC batch counts once: the drivers send it
 * in one round trip) and transaction control (commit, rollback, and auto-commit switches, which MariaDB's driver sends
 * as statements).
 */
final class CountingDataSource implements DataSource {
    private final DataSource target;
    final AtomicInteger executions = new AtomicInteger();
    final AtomicInteger transactionControl = new AtomicInteger();

    CountingDataSource(DataSource target) {
        this.target = target;
    }

    int total() {
        return executions.get() + transactionControl.get();
    }

    void reset() {
        executions.set(0);
        transactionControl.set(0);
    }

    @Override
    public Connection getConnection() throws SQLException {
        return wrap(target.getConnection());
    }

    @Override
    public Connection getConnection(String user, String password) throws SQLException {
        return wrap(target.getConnection(user, password));
    }

    private Connection wrap(Connection connection) {
        InvocationHandler handler = (proxy, method, args) -> {
            String name = method.getName();
            if (name.equals("commit") || name.equals("rollback")) {
                transactionControl.incrementAndGet();
            } else if (name.equals("setAutoCommit") && (Boolean) args[0] != connection.getAutoCommit()) {
                transactionControl.incrementAndGet();
            }
            Object result = invoke(method, connection, args);
            return result instanceof Statement s ? wrapStatement(s) : result;
        };
        return (Connection)
                Proxy.newProxyInstance(Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, handler);
    }

    private Object wrapStatement(Statement statement) {
        InvocationHandler handler = (proxy, method, args) -> {
            if (method.getName().startsWith("execute")) {
                executions.incrementAndGet();
            }
            return invoke(method, statement, args);
        };
        Class<?>[] interfaces = statement.getClass().getInterfaces().length == 0
                ? new Class<?>[] {Statement.class}
                : allStatementInterfaces(statement);
        return Proxy.newProxyInstance(Statement.class.getClassLoader(), interfaces, handler);
    }

    private static Class<?>[] allStatementInterfaces(Statement statement) {
        if (statement instanceof java.sql.CallableStatement) {
            return new Class<?>[] {java.sql.CallableStatement.class};
        }
        if (statement instanceof java.sql.PreparedStatement) {
            return new Class<?>[] {java.sql.PreparedStatement.class};
        }
        return new Class<?>[] {Statement.class};
    }

    private static Object invoke(Method method, Object target, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    @Override
    public PrintWriter getLogWriter() throws SQLException {
        return target.getLogWriter();
    }

    @Override
    public void setLogWriter(PrintWriter out) throws SQLException {
        target.setLogWriter(out);
    }

    @Override
    public void setLoginTimeout(int seconds) throws SQLException {
        target.setLoginTimeout(seconds);
    }

    @Override
    public int getLoginTimeout() throws SQLException {
        return target.getLoginTimeout();
    }

    @Override
    public Logger getParentLogger() throws SQLFeatureNotSupportedException {
        return target.getParentLogger();
    }

    @Override
    public <T> T unwrap(Class<T> iface) throws SQLException {
        return target.unwrap(iface);
    }

    @Override
    public boolean isWrapperFor(Class<?> iface) throws SQLException {
        return target.isWrapperFor(iface);
    }
}

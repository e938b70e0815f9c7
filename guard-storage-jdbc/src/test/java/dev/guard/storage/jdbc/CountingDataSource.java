package dev.guard.storage.jdbc;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.Statement;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;

/**
 * Counts what a storage sends to the database: statement executions (a JDBC batch counts once: the drivers send it
 * in one round trip) and transaction control (commit, rollback, and auto-commit switches, which MariaDB's driver sends
 * as statements). Keeps the SQL of the plain statements it executed ({@code Statement.execute(String)}: the schema's).
 */
final class CountingDataSource extends WrappingDataSource {
    final AtomicInteger executions = new AtomicInteger();
    final AtomicInteger transactionControl = new AtomicInteger();
    final List<String> plainStatements = new CopyOnWriteArrayList<>();
    /** The SQL of every statement prepared ({@code Connection.prepareStatement}). */
    final List<String> preparedStatements = new CopyOnWriteArrayList<>();

    CountingDataSource(DataSource target) {
        super(target);
    }

    int total() {
        return executions.get() + transactionControl.get();
    }

    void reset() {
        executions.set(0);
        transactionControl.set(0);
        plainStatements.clear();
        preparedStatements.clear();
    }

    @Override
    Connection wrap(Connection connection) {
        InvocationHandler handler = (proxy, method, args) -> {
            String name = method.getName();
            if (name.equals("commit") || name.equals("rollback")) {
                transactionControl.incrementAndGet();
            } else if (name.equals("setAutoCommit") && (Boolean) args[0] != connection.getAutoCommit()) {
                transactionControl.incrementAndGet();
            } else if (name.equals("prepareStatement")) {
                preparedStatements.add((String) args[0]);
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
                if (args != null && args.length > 0 && args[0] instanceof String sql) {
                    plainStatements.add(sql);
                }
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
}

package dev.guard.storage.jdbc;

import java.util.Locale;

/**
 * The SQL databases {@link JdbcStorage} speaks. {@link JdbcStorage.Builder#build()} detects the dialect from the
 * connection's metadata unless {@link JdbcStorage.Builder#dialect} names one.
 */
public enum JdbcDialect {
    /**
     * PostgreSQL 11 or later: a decision is one statement, one round trip (a call of a PL/pgSQL function installed with
     * the schema, or a plain update for a single token bucket); a single bucket's first touch or rejection costs two.
     */
    POSTGRESQL("postgresql", "postgresql.sql"),
    /**
     * MariaDB 10.6 or later: {@code INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING} creates, locks and reads a
     * decision's rows in one statement; a decision costs three round trips (lock and read, write, commit).
     */
    MARIADB("mariadb", "mariadb.sql"),
    /**
     * MySQL 8.0 or later: as {@link #MARIADB} but without {@code RETURNING}, so reading the locked rows costs one more
     * round trip (four per decision).
     */
    MYSQL("mysql", "mariadb.sql"),
    /** H2 2.x, embedded or in memory: for tests and single-process bots. */
    H2("h2", "h2.sql");

    private final String label;
    private final String schemaResource;

    JdbcDialect(String label, String schemaResource) {
        this.label = label;
        this.schemaResource = schemaResource;
    }

    /** The dialect's short lowercase name, as used in messages. */
    public String label() {
        return label;
    }

    String schemaResource() {
        return schemaResource;
    }

    /**
     * The dialect of a database from its JDBC metadata, or null when Guard does not know it. MariaDB may present
     * itself as MySQL (through MySQL's driver); its version string gives it away.
     */
    static JdbcDialect detect(String productName, String productVersion) {
        String product = productName == null ? "" : productName.toLowerCase(Locale.ROOT);
        String version = productVersion == null ? "" : productVersion.toLowerCase(Locale.ROOT);
        if (product.contains("postgresql")) {
            return POSTGRESQL;
        }
        if (product.contains("mariadb") || (product.contains("mysql") && version.contains("mariadb"))) {
            return MARIADB;
        }
        if (product.contains("mysql")) {
            return MYSQL;
        }
        if (product.equals("h2")) {
            return H2;
        }
        return null;
    }
}

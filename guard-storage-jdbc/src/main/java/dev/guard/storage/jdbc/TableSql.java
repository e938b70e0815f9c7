package dev.guard.storage.jdbc;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.DatabaseMetaData;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The SQL of one state table in one dialect. Every value is a parameter; only the validated table name is spliced,
 * quoted wherever it names the table, so that a reserved word ({@code order}, {@code user}) is a name too.
 */
final class TableSql {
    static final String DEFAULT_TABLE = "guard_state";
    private static final Pattern IDENTIFIER = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,39}");
    /**
     * The default table's name in a schema resource, followed by the rest of the name it begins: nothing where it
     * names the table, a suffix where it names something derived from it ({@code guard_state_subject}).
     */
    private static final Pattern RESOURCE_NAME = Pattern.compile("\\b" + DEFAULT_TABLE + "(\\w*)");

    private static final String STATEMENT_SEPARATOR = "\n-- statement\n";
    private static final String RETURNED = "key_hash, kind, state, version, expires_at";
    /**
     * PostgreSQL: whether a function resolves; one parameter, its signature as {@link #evaluateSignature()} has it. The
     * to_reg* functions take text since PostgreSQL 9.6 (cstring before), so this, {@link #tableComment()} and {@link
     * #relationBesideTable()} work on every version that {@link JdbcDialect#POSTGRESQL} names.
     */
    static final String FUNCTION_PROBE = "SELECT to_regprocedure(CAST(? AS text)) IS NOT NULL";
    /**
     * How the table's comment records the schema version that the DDL installed: this, then the version. The statement
     * of a schema resource that writes it is the one that quotes it ({@link #recordsVersion}).
     */
    private static final String VERSION_MARK = "Guard schema version ";

    /** The mark and the version, which a later version's comment may follow with more words. */
    private static final Pattern VERSION = Pattern.compile(Pattern.quote(VERSION_MARK) + "([1-9][0-9]{0,8})\\b");

    /** A schema statement that creates an index unless it exists, and the index's name as written. */
    private static final Pattern CREATE_INDEX =
            Pattern.compile("^CREATE INDEX IF NOT EXISTS (\\w+) ON ", Pattern.MULTILINE);

    final JdbcDialect dialect;
    /** The name as configured: the prefix of the names derived from it, which are never reserved words. */
    final String table;
    /**
     * The table's name in SQL: quoted, and in the case that the database gives the name unquoted, so that it names
     * the same table as DDL that did not quote it.
     */
    private final String identifier;
    /** The table's name as the database stores it, unquoted: what its catalog calls it. */
    private final String stored;
    /** What the database makes of the names that the schema resources write unquoted. */
    private final NameCase unquoted;
    /**
     * Whether decisions on PostgreSQL commit without waiting for the WAL flush: the locking statement of the Java
     * path and the bucket statements then set {@code synchronous_commit = off} for their own transaction, as the
     * evaluate function does for its own.
     */
    private final boolean asyncCommit;

    private final ConcurrentMap<Integer, String> lockByCount = new ConcurrentHashMap<>();
    private final ConcurrentMap<Integer, String> selectByCount = new ConcurrentHashMap<>();
    /** {@link #bucketsUpdate}'s statements, by {@code 4 n + 2 allOrNothing + lockTimeout}. */
    private final ConcurrentMap<Integer, String> bucketsUpdates = new ConcurrentHashMap<>();
    /** {@link #lockOne()}: built once. */
    private final String lockOne;

    TableSql(JdbcDialect dialect, String table, NameCase unquoted, boolean asyncCommit) {
        this.dialect = dialect;
        this.table = table;
        this.stored = unquoted.apply(table);
        this.unquoted = unquoted;
        // MariaDB and MySQL treat a name in backticks as they treat it bare, whatever the case.
        this.identifier = dialect == JdbcDialect.MARIADB || dialect == JdbcDialect.MYSQL
                ? "`" + stored + "`"
                : "\"" + stored + "\"";
        this.asyncCommit = asyncCommit;
        this.lockOne = buildLock(1, false);
    }

    /**
     * What a database makes of a name written without quotes. PostgreSQL folds it to lower case; H2 to upper case
     * unless its settings say otherwise ({@code DATABASE_TO_LOWER}, {@code DATABASE_TO_UPPER}); MariaDB and MySQL keep
     * it as written, quoted or not.
     */
    enum NameCase {
        UPPER,
        LOWER,
        AS_WRITTEN;

        /** The case of unquoted names in the database of {@code meta}. */
        static NameCase of(DatabaseMetaData meta) throws SQLException {
            if (meta.storesUpperCaseIdentifiers()) {
                return UPPER;
            }
            return meta.storesLowerCaseIdentifiers() ? LOWER : AS_WRITTEN;
        }

        /** The name as the database stores it unquoted; names are ASCII ({@link #checkTable}). */
        String apply(String name) {
            return switch (this) {
                case UPPER -> name.toUpperCase(Locale.ROOT);
                case LOWER -> name.toLowerCase(Locale.ROOT);
                case AS_WRITTEN -> name;
            };
        }
    }

    /**
     * Checks a table name: letters, digits and underscores, at most 40 characters, so that the names derived from it
     * (indexes, functions) stay within every database's identifier limit.
     */
    static String checkTable(String table) {
        if (table == null || !IDENTIFIER.matcher(table).matches()) {
            throw new IllegalArgumentException("table must be a plain identifier (letters, digits, underscores, at most"
                    + " 40 characters, not starting with a digit) but was "
                    + (table == null ? "null" : "'" + table + "'"));
        }
        return table;
    }

    /**
     * Inserts an absent placeholder for each of {@code n} keys that has no row, locks every row in the order given
     * (the callers sort by key hash) and, except on MySQL, answers them: {@link #RETURNED}. Four parameters per key:
     * key hash, subject hash, scope, subject. On MariaDB and MySQL the duplicate branch takes an exclusive record lock
     * at once (never a shared one that two transactions would both try to upgrade), and no statement ever locks a
     * missing key's gap, so concurrent first touches of distinct keys cannot deadlock.
     */
    String lock(int n) {
        return lockByCount.computeIfAbsent(n, count -> buildLock(count, asyncCommit));
    }

    /**
     * {@link #lock} of one key for a gate, a set member or a record, which commit with the server's setting: never
     * with the asynchronous commit of decisions.
     */
    String lockOne() {
        return lockOne;
    }

    private String buildLock(int n, boolean async) {
        StringBuilder sb = new StringBuilder();
        switch (dialect) {
            case POSTGRESQL -> {
                sb.append("INSERT INTO ")
                        .append(identifier)
                        .append(" AS t (key_hash, subject_hash, scope, subject, kind,")
                        .append(" expires_at) VALUES ");
                rows(sb, n, "(?, ?, ?, ?, 0, 0)");
                sb.append(" ON CONFLICT (key_hash) DO UPDATE SET kind = t.kind RETURNING ")
                        .append(RETURNED);
                if (async) {
                    // Evaluated for every row returned, and there is always one: only this transaction skips the
                    // WAL flush wait. The column after RETURNED's is not read.
                    sb.append(", set_config('synchronous_commit', 'off', true)");
                }
            }
            case MARIADB, MYSQL -> {
                sb.append("INSERT INTO ")
                        .append(identifier)
                        .append(" (key_hash, subject_hash, scope, subject, kind,")
                        .append(" expires_at) VALUES ");
                rows(sb, n, "(?, ?, ?, ?, 0, 0)");
                sb.append(" ON DUPLICATE KEY UPDATE kind = kind");
                if (dialect == JdbcDialect.MARIADB) {
                    sb.append(" RETURNING ").append(RETURNED);
                }
            }
            case H2 -> {
                sb.append("SELECT ")
                        .append(RETURNED)
                        .append(" FROM FINAL TABLE (MERGE INTO ")
                        .append(identifier)
                        .append(" t USING (VALUES ");
                rows(
                        sb,
                        n,
                        "(CAST(? AS BINARY(32)), CAST(? AS BINARY(32)), CAST(? AS CHARACTER VARYING),"
                                + " CAST(? AS CHARACTER VARYING))");
                sb.append(") s(key_hash, subject_hash, scope, subject) ON t.key_hash = s.key_hash")
                        .append(" WHEN MATCHED THEN UPDATE SET kind = t.kind")
                        .append(" WHEN NOT MATCHED THEN INSERT (key_hash, subject_hash, scope, subject, kind,")
                        .append(" expires_at) VALUES (s.key_hash, s.subject_hash, s.scope, s.subject, 0, 0))");
            }
        }
        return sb.toString();
    }

    /** MySQL only: reads the {@code n} rows that {@link #lock} locked. One parameter per key: its hash. */
    String selectLocked(int n) {
        return selectByCount.computeIfAbsent(n, count -> {
            StringBuilder sb = new StringBuilder("SELECT ")
                    .append(RETURNED)
                    .append(" FROM ")
                    .append(identifier)
                    .append(" WHERE key_hash IN (");
            rows(sb, count, "?");
            return sb.append(") FOR UPDATE").toString();
        });
    }

    private static void rows(StringBuilder sb, int n, String row) {
        for (int i = 0; i < n; i++) {
            sb.append(i == 0 ? "" : ", ").append(row);
        }
    }

    /** Overwrites a locked row: kind, state, record, version, expires_at, then the key hash. */
    String write() {
        return "UPDATE " + identifier + " SET kind = ?, state = ?, record = ?, version = ?, expires_at = ?"
                + " WHERE key_hash = ?";
    }

    /**
     * PostgreSQL, one token bucket step with {@code 1 <= permits <= capacity}, the common case: a plain {@code UPDATE}
     * of the key's row when the bucket admits, which costs the server less than {@link #bucketDecision}'s upsert (no
     * insert to prepare, no conflict check, no second branch). Its {@code SET} and {@code WHERE} are the upsert's
     * {@code DO UPDATE} branch word for word, so it decides exactly as that branch does: a row that is absent, expired
     * or of another kind than a live gate or membership counts as a full bucket. It answers one row, the new level in
     * ticks, or updates nothing and writes nothing: no row yet, a rejection (which must consume nothing), a live gate
     * or membership under the key, or a level outside {@code [0, capacity)}; the caller then decides with {@link
     * #bucketDecision}. Under concurrent updates PostgreSQL locks the row and evaluates the conditions again on its
     * newest version (READ COMMITTED), so the decision is the reference's on the state it replaces. Parameters by
     * {@link BucketParam}: hash, now, cap, rate and cost, each bound once.
     */
    NamedSql bucketUpdate() {
        // Each number is bound once, through a one-row subquery that the planner flattens away (its columns become
        // the parameters themselves): five parameters to bind instead of forty.
        String sql = "UPDATE " + identifier + " AS t SET " + bucketUpdateSet("p.")
                + " FROM (SELECT CAST(:now AS bigint) AS now, CAST(:cap AS bigint) AS cap,"
                + " CAST(:rate AS bigint) AS rate, CAST(:cost AS bigint) AS cost) AS p"
                + " WHERE t.key_hash = :hash AND " + bucketAdmits("p.")
                + asyncCommitTest("AND")
                + " RETURNING t.state[1]";
        return NamedSql.of(sql, BucketParam.class);
    }

    /**
     * PostgreSQL, when decisions commit asynchronously: a condition, after {@code keyword}, that sets {@code
     * synchronous_commit = off} for the statement's own transaction as it is evaluated (only that decision skips the
     * WAL flush wait; a statement that writes nothing waits for none either way). Empty otherwise.
     */
    private String asyncCommitTest(String keyword) {
        return asyncCommit ? " " + keyword + " set_config('synchronous_commit', 'off', true) = 'off'" : "";
    }

    /**
     * PostgreSQL, {@code n} token bucket steps on distinct keys, each with {@code 1 <= permits <= capacity}, of one
     * decision or of the decisions that share a call: {@link #bucketUpdate} for all their rows in one statement.
     * Parameters in order: per row (in lock order) its key's hash, its decision's now, capacity, rate and cost; then,
     * with {@code lockTimeout}, the lock timeout in milliseconds, which the statement sets for its own transaction as it
     * evaluates its first row (before it can wait for any row's lock, which comes only after a row's conditions
     * passed), as the evaluate function does for a shared call; then, with {@code allOrNothing}, {@code n} again. It
     * answers {@code key_hash, level} (the level after the step, in ticks) for each row it updated. With {@code
     * allOrNothing} it updates every row or none: when some but not all of the rows admit, it divides by zero (SQLSTATE
     * 22012) and rolls back; when none does, it answers no row. Without, each row is updated on its own, and a row that
     * does not admit (or has none) is left as it was. The keys come as a {@code VALUES} list rather than arrays, so that
     * the planner knows how many there are: with arrays it guesses ten, costs the generic plan above the custom ones
     * and plans every execution again, which takes longer than executing it.
     */
    String bucketsUpdate(int n, boolean allOrNothing, boolean lockTimeout) {
        return bucketsUpdates.computeIfAbsent(4 * n + (allOrNothing ? 2 : 0) + (lockTimeout ? 1 : 0), variant -> {
            StringBuilder rows = new StringBuilder();
            for (int i = 0; i < n; i++) {
                rows.append(i == 0 ? "" : ", ")
                        .append("(CAST(? AS bytea), CAST(? AS bigint), CAST(? AS bigint), CAST(? AS bigint),"
                                + " CAST(? AS bigint))");
            }
            String update = "UPDATE " + identifier + " AS t SET " + bucketUpdateSet("p.")
                    + " FROM (VALUES " + rows + ") AS p (hash, now, cap, rate, cost) WHERE t.key_hash = p.hash AND "
                    + bucketAdmits("p.")
                    + asyncCommitTest("AND")
                    + (lockTimeout ? " AND set_config('lock_timeout', CAST(? AS text), true) IS NOT NULL" : "")
                    + " RETURNING t.key_hash, t.state[1] AS level";
            return allOrNothing
                    ? "WITH u AS (" + update + ")"
                            + " SELECT key_hash, level / CASE WHEN (SELECT count(*) FROM u) = ? THEN 1 ELSE 0 END FROM u"
                    : update;
        });
    }

    /**
     * PostgreSQL, one token bucket step with {@code 1 <= permits <= capacity}, when {@link #bucketUpdate} updated
     * nothing: the whole decision in one plain statement, which costs the server a fraction of a call of the evaluate
     * function (a PL/pgSQL function initialises each of its expressions again in every transaction). The upsert
     * inserts a first touch as already consumed, or locks the existing row and updates it only if the bucket holds
     * enough; the same arithmetic as {@code TokenBucket} and the evaluate function. It answers one row: {@code
     * admitted, kind, state, expires_at}, the new state when admitted, otherwise the row as locked (locking it again
     * follows its update chain to the version the upsert saw, whatever this statement's snapshot holds). No row means
     * that a concurrent first touch inserted the key after this statement's snapshot; the caller then decides with the
     * evaluate function. Parameters by {@link BucketParam}.
     */
    NamedSql bucketDecision() {
        String sql = "WITH up AS (INSERT INTO " + identifier + " AS t"
                + " (key_hash, subject_hash, scope, subject, kind, state, version, expires_at)"
                + " SELECT :hash, :subject_hash, :scope, :subject, 1, ARRAY[:first_level, :now], 0, :first_expiry"
                + asyncCommitTest("WHERE")
                + " ON CONFLICT (key_hash) DO UPDATE SET " + bucketUpdateSet(":")
                + " WHERE " + bucketAdmits(":")
                + " RETURNING t.state)"
                + " SELECT TRUE, 1, state, 0 FROM up"
                + " UNION ALL SELECT FALSE, r.kind, r.state, r.expires_at FROM (SELECT kind, state, expires_at FROM "
                + identifier + " WHERE key_hash = :hash AND NOT EXISTS (SELECT 1 FROM up) FOR UPDATE) r";
        return NamedSql.of(sql, BucketParam.class);
    }

    /**
     * The new bucket row of {@link #bucketUpdate} and {@link #bucketDecision}: level minus cost, last update, expiry;
     * {@code p} prefixes the numbers' names (":" for parameters). Each expression appears once per use, spelled out
     * rather than through guard_state_bucket_level: the executor builds every expression of a statement again at each
     * execution, so their size is the cost.
     */
    private String bucketUpdateSet(String p) {
        String level = bucketLevel(p);
        String last = bucketLast(p);
        String cost = p + "cost";
        return "kind = 1, record = NULL, version = 0, state = ARRAY[(" + level + ") - " + cost + ", " + last + "],"
                // The ttl: the ceiling of missing / rate, where missing >= 1 (bucketAdmits).
                + " expires_at = " + last + " + (" + p + "cap - (" + level + ") + " + cost + " - 1) / " + p
                + "rate + 1";
    }

    /**
     * Admits when 0 <= level - cost < capacity. Gates and memberships under the same key take the general path: the
     * statements leave them alone. So does a row whose last update is not before now and whose level is full or above
     * it (another bucket's, with fewer ticks to a token): the level is then capped, and a full bucket starts afresh at
     * now, which {@link #bucketLevel} and {@link #bucketLast} do not spell out. A row without state (an absent
     * placeholder: a first touch, or state that the evaluate function found expired) is a full bucket.
     */
    private String bucketAdmits(String p) {
        return "NOT (t.kind IN (2, 3) AND t.expires_at > " + p + "now) AND (t.state[2] < " + p + "now OR t.state[1] < "
                + p + "cap) IS NOT FALSE AND (" + bucketLevel(p) + ") - " + p + "cost <@ int8range(0, " + p + "cap)";
    }

    /**
     * The bucket's level at now in ticks; a row that is not a live limit counts as a full bucket. Full once the time
     * since the last update, {@code d >= 1} in that branch, reaches {@code ceil(missing / rate)}, which for integers is
     * {@code d > (missing - 1) / rate} with truncating division, also when nothing is missing: one subscript and one
     * division instead of the inlined ceiling's three subscripts under a CASE (the executor builds every expression of
     * the statement again at each execution, so the expression's size is its cost).
     */
    private String bucketLevel(String p) {
        String now = p + "now";
        String cap = p + "cap";
        String rate = p + "rate";
        return "CASE WHEN NOT (" + bucketLive(p) + ") THEN " + cap + " WHEN t.state[2] >= " + now + " THEN t.state[1]"
                + " WHEN " + now + " - t.state[2] > (" + cap + " - t.state[1] - 1) / " + rate + " THEN " + cap
                + " ELSE t.state[1] + (" + now + " - t.state[2]) * " + rate + " END";
    }

    private static String bucketLast(String p) {
        return "CASE WHEN " + bucketLive(p) + " THEN GREATEST(t.state[2], " + p + "now) ELSE " + p + "now END";
    }

    /**
     * A live limit row of a bucket's shape, updated no more than {@link dev.guard.limit.LimitSpec#MAX_LEAD_MICROS}
     * after now; state of another shape, or dated later (another limit at the key), counts as absent.
     */
    private static String bucketLive(String p) {
        return "t.kind = 1 AND t.expires_at > " + p + "now AND cardinality(t.state) = 2 AND t.state[2] <= " + p
                + "now + " + dev.guard.limit.LimitSpec.MAX_LEAD_MICROS;
    }

    /** The parameters of {@link #bucketUpdate} and {@link #bucketDecision}. */
    enum BucketParam {
        HASH,
        SUBJECT_HASH,
        SCOPE,
        SUBJECT,
        /** A first touch's level after the step, in ticks. */
        FIRST_LEVEL,
        /** A first touch's expiry. */
        FIRST_EXPIRY,
        NOW,
        /** Capacity in ticks. */
        CAP,
        /** Ticks per microsecond. */
        RATE,
        /** The step's permits in ticks. */
        COST
    }

    /** SQL written with {@code :name} parameters, and which parameter each JDBC position binds. */
    record NamedSql(String sql, int[] slots) {
        static <E extends Enum<E>> NamedSql of(String named, Class<E> params) {
            StringBuilder sb = new StringBuilder(named.length());
            List<Integer> slots = new ArrayList<>();
            int i = 0;
            while (i < named.length()) {
                char c = named.charAt(i);
                boolean cast = i > 0 && named.charAt(i - 1) == ':';
                if (c == ':' && !cast && i + 1 < named.length() && Character.isLowerCase(named.charAt(i + 1))) {
                    int end = i + 1;
                    while (end < named.length()
                            && (Character.isLowerCase(named.charAt(end)) || named.charAt(end) == '_')) {
                        end++;
                    }
                    slots.add(Enum.valueOf(params, named.substring(i + 1, end).toUpperCase(Locale.ROOT))
                            .ordinal());
                    sb.append('?');
                    i = end;
                } else {
                    sb.append(c);
                    i++;
                }
            }
            return new NamedSql(
                    sb.toString(), slots.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    /**
     * PostgreSQL: the evaluate function's name and parameter types as this version calls it, resolved through the
     * search path as the call is.
     */
    String evaluateSignature() {
        return table + "_evaluate(bytea[], bytea[], text[], text[], int[], bigint[], int[], bigint[], boolean, int)";
    }

    /** PostgreSQL's one-round-trip decision: see postgresql.sql. */
    String evaluateFunction() {
        return "SELECT " + table + "_evaluate(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    }

    /** A row without locking it: kind, state, version, expires_at, record. */
    String read() {
        return "SELECT kind, state, version, expires_at, record FROM " + identifier + " WHERE key_hash = ?";
    }

    /** Makes a row absent if it still holds state that expired: key hash, now. */
    String resetExpired() {
        return "UPDATE " + identifier + " SET kind = 0, state = NULL, record = NULL, version = 0, expires_at = 0"
                + " WHERE key_hash = ? AND kind BETWEEN 1 AND 3 AND expires_at <= ?";
    }

    /** The keys of one subject: key_hash, kind. */
    String subjectKeys() {
        return "SELECT key_hash, kind FROM " + identifier + " WHERE subject_hash = ?";
    }

    String delete() {
        return "DELETE FROM " + identifier + " WHERE key_hash = ?";
    }

    /**
     * The key a sweep window ends with: the key hash at an offset after a key hash (key hash, offset), or no row when
     * fewer keys follow. Reads the primary key only, as far as the offset.
     */
    String sweepWindowEnd() {
        return "SELECT key_hash FROM " + identifier + " WHERE key_hash > ? ORDER BY key_hash LIMIT 1 OFFSET ?";
    }

    /**
     * The next expired rows of a window of the key order, locked, skipping rows that a decision holds: key hash after
     * which the window starts, its last key hash, expiry, limit. Walks the primary key within the window, so that
     * successive batches make progress without an index on expires_at. Not on H2 ({@link #sweepLocksSeparately()}).
     */
    String sweepSelect() {
        return "SELECT key_hash FROM " + identifier + " WHERE key_hash > ? AND key_hash <= ? AND expires_at <= ?"
                + " ORDER BY key_hash LIMIT ? FOR UPDATE SKIP LOCKED";
    }

    /**
     * Whether the sweeper finds a batch with a plain read first and then locks it with {@link #sweepLockRange()}. On
     * H2 a locking read with ORDER BY does not stop at its LIMIT: it reads every row after the key hash and locks
     * every expired one among them before it sorts, so that one batch would hold up decisions on expired keys far
     * beyond its own rows.
     */
    boolean sweepLocksSeparately() {
        return dialect == JdbcDialect.H2;
    }

    /**
     * The next expired rows of a window of the key order, without locking them: key hash after which the window
     * starts, its last key hash, expiry, limit.
     */
    String sweepFind() {
        return "SELECT key_hash FROM " + identifier + " WHERE key_hash > ? AND key_hash <= ? AND expires_at <= ?"
                + " ORDER BY key_hash LIMIT ?";
    }

    /**
     * The expired rows from one key hash to another (both included), locked, skipping rows that a decision holds:
     * first key hash, last key hash, expiry.
     */
    String sweepLockRange() {
        return "SELECT key_hash FROM " + identifier + " WHERE key_hash >= ? AND key_hash <= ? AND expires_at <= ?"
                + " FOR UPDATE SKIP LOCKED";
    }

    /** Deletes one swept row if it is still expired: key hash, expiry. */
    String sweepDelete() {
        return "DELETE FROM " + identifier + " WHERE key_hash = ? AND expires_at <= ?";
    }

    String probe() {
        return "SELECT COUNT(*) FROM " + identifier + " WHERE key_hash = ?";
    }

    /**
     * The table's comment, where the DDL records its schema version: one row of one column (null or empty without a
     * comment), or no row when the table does not exist. One parameter, {@link #tableCommentKey()}. A look-up in the
     * catalog by name, resolved as the statements resolve the table: through PostgreSQL's search path, in the current
     * database on MariaDB and MySQL, in the current schema on H2.
     */
    String tableComment() {
        return switch (dialect) {
            case POSTGRESQL ->
                "SELECT obj_description(t.oid, 'pg_class')"
                        + " FROM (SELECT to_regclass(CAST(? AS text)) AS oid) AS t WHERE t.oid IS NOT NULL";
            case MARIADB, MYSQL ->
                "SELECT TABLE_COMMENT FROM information_schema.TABLES"
                        + " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?";
            case H2 ->
                "SELECT REMARKS FROM INFORMATION_SCHEMA.TABLES"
                        + " WHERE TABLE_SCHEMA = CURRENT_SCHEMA AND TABLE_NAME = ?";
        };
    }

    /** The parameter of {@link #tableComment()}: the name in SQL on PostgreSQL, the stored name elsewhere. */
    String tableCommentKey() {
        return dialect == JdbcDialect.POSTGRESQL ? identifier : stored;
    }

    /**
     * The index that {@code statement}, one of {@link #schema}'s, creates unless it exists: its name as the database
     * stores it, or null when the statement creates no index.
     */
    String createdIndex(String statement) {
        Matcher m = CREATE_INDEX.matcher(statement);
        return m.find() ? unquoted.apply(m.group(1)) : null;
    }

    /**
     * PostgreSQL: one row when a relation of a name exists in the schema of the table as the statements resolve it,
     * which is what {@code CREATE INDEX IF NOT EXISTS} looks for, but without the SHARE lock on the table that the
     * statement takes before it looks. Parameters: {@link #tableCommentKey()}, then the relation's name as stored
     * ({@link #createdIndex}).
     */
    String relationBesideTable() {
        return "SELECT 1 FROM pg_class t JOIN pg_class r ON r.relnamespace = t.relnamespace"
                + " WHERE t.oid = to_regclass(CAST(? AS text)) AND r.relname = ?";
    }

    /** The schema version that a table's comment records, or 0 when it records none (any other comment, or none). */
    static int schemaVersion(String comment) {
        if (comment == null) {
            return 0;
        }
        Matcher m = VERSION.matcher(comment);
        return m.lookingAt() ? Integer.parseInt(m.group(1)) : 0;
    }

    /** Whether {@code statement}, one of {@link #schema}'s, is the one that records the schema version. */
    static boolean recordsVersion(String statement) {
        return statement.contains("'" + VERSION_MARK);
    }

    /**
     * The schema's statements for this table, from the dialect's DDL resource: the table's name quoted where it names
     * the table, and the prefix of derived names as configured, unquoted as the resource has them.
     */
    List<String> schema(boolean unlogged) {
        String script = RESOURCE_NAME
                .matcher(resource(dialect.schemaResource()))
                .replaceAll(m -> Matcher.quoteReplacement(m.group(1).isEmpty() ? identifier : table + m.group(1)));
        if (unlogged) {
            script = script.replace("CREATE TABLE IF NOT EXISTS", "CREATE UNLOGGED TABLE IF NOT EXISTS");
        }
        List<String> statements = new ArrayList<>();
        for (String part : script.split(Pattern.quote(STATEMENT_SEPARATOR))) {
            if (!part.isBlank()) {
                statements.add(part.strip());
            }
        }
        return statements;
    }

    /** The text of a DDL resource as shipped, for people who manage migrations themselves. */
    static String resource(String name) {
        try (InputStream in = TableSql.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("resource " + name + " is missing from guard-storage-jdbc");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read resource " + name, e);
        }
    }
}

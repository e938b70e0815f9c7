package dev.guard.benchmarks;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.guard.Ticker;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.storage.jdbc.JdbcStorage;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.distributed.BucketProxy;
import io.github.bucket4j.distributed.proxy.ProxyManager;
import io.github.bucket4j.postgresql.Bucket4jPostgreSQL;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;

/**
 * Token buckets in PostgreSQL: Guard's {@code JdbcStorage} beside Bucket4j's select-for-update proxy manager (SELECT
 * ... FOR UPDATE, UPDATE, COMMIT per bucket; the cheaper of its two, whose advisory-lock one sends a locking statement
 * more), measured in the same run over the same kind of pool. Guard sends one
 * statement per decision in auto-commit: for one limit a plain {@code UPDATE ... RETURNING} of the bucket's row that
 * writes only if the bucket admits (a key's first touch finds no row and costs a second statement, the upsert, as a
 * rejection would); for the chain one call of its PL/pgSQL evaluate function. The limit is never reached, so every
 * decision writes; the buckets refill within a microsecond, so most rows Guard finds have expired, which the update
 * treats as full buckets.
 *
 * <p>{@code limits}: 1 is one bucket per user; 3 is a chain of three buckets on three different keys (user, chat,
 * tenant). Guard evaluates the chain in one atomic call; Bucket4j needs one transaction per bucket and cannot make them
 * all-or-nothing. (Three limits on one key would be one Bucket4j bucket with three bandwidths; that is not this case.)
 *
 * <p>{@code commit}: the durability both sides run with, on the {@link #table} both use. {@code sync}: every
 * decision waits for its WAL flush (Bucket4j's default; Guard with {@code synchronousCommit(true)}). {@code async}:
 * neither waits (Guard's default, {@code synchronous_commit = off} per decision; Bucket4j's connections set it per
 * session). The defaults comparison is Guard async against Bucket4j sync.
 *
 * <p>Keys: each operation picks a user uniformly among 10,000; chat and tenant derive from it (1,000 and 100 of them).
 * Every key's row is created in the setup, on both sides, so that the measurement sees no first touch: otherwise the
 * slower side, having covered fewer of the 10,000 users in its warm-up, paid more first touches in its measurement
 * (Bucket4j's costs a failed {@code SELECT ... FOR UPDATE}, an {@code INSERT} and the {@code SELECT} again).
 * Server: {@code GUARD_POSTGRES_URL} (default {@code jdbc:postgresql://127.0.0.1:5432/test}), user {@code
 * GUARD_POSTGRES_USER} (default {@code postgres}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class JdbcTokenBucketBenchmark {
    static final int USERS = 10_000;
    static final int CHATS = 1_000;
    static final int TENANTS = 100;
    static final int POOL_SIZE = 10;
    static final String GUARD_TABLE = "guard_bench";
    static final String BUCKET4J_TABLE = "bucket4j_bench";

    @Param({"guard", "bucket4j"})
    public String impl;

    @Param({"1", "3"})
    public int limits;

    @Param({"sync", "async"})
    public String commit;

    /**
     * The table both sides keep their state in: {@code logged} (PostgreSQL's default) or {@code unlogged} (no WAL for
     * its rows: Guard's {@code unloggedTable(true)}, and Bucket4j's table created {@code UNLOGGED}, which Bucket4j
     * leaves to its user). Each kind has a table of its own.
     */
    @Param({"logged"})
    public String table;

    /**
     * Guard's {@code concurrentCalls}: how many calls it has in flight at once; decisions that arrive meanwhile share
     * the next call. Its default is 2. Bucket4j has no such option.
     */
    @Param({"2"})
    public int calls;

    private HikariDataSource pool;
    private JdbcStorage guard;
    private final Ticker ticker = Ticker.system();
    private final TokenBucket bucket = new TokenBucket(1_000_000_000L, 1_000_000_000L, Duration.ofSeconds(1));
    private StateKey[] users;
    private Batch[] chains;
    private BucketProxy[] userBuckets;
    private BucketProxy[] chatBuckets;
    private BucketProxy[] tenantBuckets;

    @Setup(Level.Trial)
    public void setUp() throws SQLException, InterruptedException, ExecutionException {
        boolean async = "async".equals(commit);
        boolean unlogged =
                switch (table) {
                    case "logged" -> false;
                    case "unlogged" -> true;
                    default -> throw new IllegalArgumentException("table must be logged or unlogged but was " + table);
                };
        String guardTable = unlogged ? GUARD_TABLE + "_unlogged" : GUARD_TABLE;
        String bucket4jTable = unlogged ? BUCKET4J_TABLE + "_unlogged" : BUCKET4J_TABLE;
        // Bucket4j has no durability option of its own: its connections get synchronous_commit per session.
        pool = pool(impl.equals("bucket4j") && async ? "SET synchronous_commit TO off" : null);
        if (impl.equals("guard")) {
            guard = JdbcStorage.builder(pool)
                    .table(guardTable)
                    .unloggedTable(unlogged)
                    .synchronousCommit(!async)
                    .concurrentCalls(calls)
                    .sweepInterval(Duration.ZERO)
                    .build();
            guard.createSchema();
            execute("TRUNCATE " + guardTable);
            users = new StateKey[USERS];
            chains = new Batch[USERS];
            for (int u = 0; u < USERS; u++) {
                users[u] = new StateKey("user", Integer.toString(u));
                chains[u] = Batch.of(
                        new Step(users[u], bucket, 1),
                        new Step(new StateKey("chat", Integer.toString(u % CHATS)), bucket, 1),
                        new Step(new StateKey("tenant", Integer.toString(u % TENANTS)), bucket, 1));
            }
            long now = ticker.epochMicros();
            touchAll(USERS, u -> {
                if (limits == 1) {
                    guard.acquire(users[u], bucket, 1, now);
                } else {
                    guard.evaluate(chains[u], now);
                }
            });
            analyze(guardTable);
        } else {
            execute("CREATE " + (unlogged ? "UNLOGGED " : "") + "TABLE IF NOT EXISTS " + bucket4jTable
                    + " (id BIGINT PRIMARY KEY, state BYTEA)");
            execute("TRUNCATE " + bucket4jTable);
            ProxyManager<Long> proxies = Bucket4jPostgreSQL.selectForUpdateBasedBuilder(pool)
                    .table(bucket4jTable)
                    .idColumn("id")
                    .stateColumn("state")
                    .build();
            BucketConfiguration config = BucketConfiguration.builder()
                    .addLimit(
                            limit -> limit.capacity(1_000_000_000L).refillGreedy(1_000_000_000L, Duration.ofSeconds(1)))
                    .build();
            userBuckets = new BucketProxy[USERS];
            chatBuckets = new BucketProxy[CHATS];
            tenantBuckets = new BucketProxy[TENANTS];
            for (int u = 0; u < USERS; u++) {
                userBuckets[u] = proxies.builder().build((long) u, () -> config);
            }
            for (int c = 0; c < CHATS; c++) {
                chatBuckets[c] = proxies.builder().build(1_000_000L + c, () -> config);
            }
            for (int t = 0; t < TENANTS; t++) {
                tenantBuckets[t] = proxies.builder().build(2_000_000L + t, () -> config);
            }
            touchAll(USERS, u -> userBuckets[u].tryConsume(1));
            if (limits == 3) {
                touchAll(CHATS, c -> chatBuckets[c].tryConsume(1));
                touchAll(TENANTS, t -> tenantBuckets[t].tryConsume(1));
            }
            analyze(bucket4jTable);
        }
    }

    /** Runs {@code touch} for 0 to {@code n - 1} on as many threads as the pool has connections: creates the rows. */
    private static void touchAll(int n, IntConsumer touch) throws InterruptedException, ExecutionException {
        ForkJoinPool threads = new ForkJoinPool(POOL_SIZE);
        try {
            threads.submit(() -> IntStream.range(0, n).parallel().forEach(touch))
                    .get();
        } finally {
            threads.shutdown();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (guard != null) {
            guard.close();
        }
        pool.close();
    }

    /**
     * Gives the planner the statistics of the table just filled, as autovacuum would within a minute: until then it
     * takes the table for the few pages it had when {@code TRUNCATE} emptied it, and a statement planned in that time
     * keeps its plan for the table of that size (a join of Guard's chain statement may scan it whole).
     */
    private void analyze(String table) throws SQLException {
        execute("ANALYZE " + table);
    }

    private void execute(String sql) throws SQLException {
        try (Connection c = pool.getConnection();
                Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    static HikariDataSource pool(String connectionInitSql) {
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(env("GUARD_POSTGRES_URL", "jdbc:postgresql://127.0.0.1:5432/test"));
        config.setUsername(env("GUARD_POSTGRES_USER", "postgres"));
        config.setPassword(env("GUARD_POSTGRES_PASSWORD", ""));
        config.setMaximumPoolSize(POOL_SIZE);
        config.setMinimumIdle(POOL_SIZE);
        config.setPoolName("jdbc-benchmark");
        if (connectionInitSql != null) {
            config.setConnectionInitSql(connectionInitSql);
        }
        return new HikariDataSource(config);
    }

    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }

    private boolean decide() {
        int u = ThreadLocalRandom.current().nextInt(USERS);
        if (guard != null) {
            long now = ticker.epochMicros();
            return limits == 1
                    ? guard.acquire(users[u], bucket, 1, now) >= 0
                    : guard.evaluate(chains[u], now).admitted();
        }
        if (limits == 1) {
            return userBuckets[u].tryConsume(1);
        }
        // Three transactions, and no all-or-nothing: a later rejection would not refund the earlier buckets.
        return userBuckets[u].tryConsume(1)
                & chatBuckets[u % CHATS].tryConsume(1)
                & tenantBuckets[u % TENANTS].tryConsume(1);
    }

    /** One client thread. */
    @Benchmark
    @Threads(1)
    public boolean oneThread() {
        return decide();
    }

    /** Eight client threads sharing the pool. */
    @Benchmark
    @Threads(8)
    public boolean eightThreads() {
        return decide();
    }

    /** The floor: {@code SELECT 1} through the same kind of pool, one round trip and no write. */
    @State(Scope.Benchmark)
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    public static class SelectOne {
        private HikariDataSource pool;

        @Setup(Level.Trial)
        public void setUp() {
            pool = pool(null);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            pool.close();
        }

        private int selectOne() throws SQLException {
            try (Connection c = pool.getConnection();
                    Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT 1")) {
                rs.next();
                return rs.getInt(1);
            }
        }

        /** One client thread. */
        @Benchmark
        @Threads(1)
        public int oneThread() throws SQLException {
            return selectOne();
        }

        /** Eight client threads sharing the pool. */
        @Benchmark
        @Threads(8)
        public int eightThreads() throws SQLException {
            return selectOne();
        }
    }
}

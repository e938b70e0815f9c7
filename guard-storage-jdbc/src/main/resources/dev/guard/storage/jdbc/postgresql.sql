-- Guard's JDBC storage schema for PostgreSQL (11 or later). JdbcStorage.createSchema() runs this file with the
-- configured table name in place of guard_state, in double quotes and lower case where it names the table, so that a
-- reserved word works too (and with CREATE UNLOGGED TABLE when asked for); you may also run it yourself with psql or a
-- migration tool. Statements are separated by "-- statement" lines.
--
-- One row per state key. key_hash is the identity: SHA-256 over the key's UTF-16 code units, length-prefixed, so
-- that keys of any content and length fit a fixed-size primary key; scope and subject keep the full key for people
-- (NUL characters are stored as U+FFFD). kind: 0 absent (a placeholder from a first touch), 1 limit state,
-- 2 gate, 3 set member, 4 record. A row whose expires_at (microseconds since the epoch) is not after "now" is
-- absent. There is deliberately no index on expires_at: it would turn every decision's update into a non-HOT
-- update; the sweeper walks the primary key instead.

CREATE TABLE IF NOT EXISTS guard_state (
    key_hash     bytea    NOT NULL PRIMARY KEY,
    subject_hash bytea    NOT NULL,
    scope        text     NOT NULL,
    subject      text     NOT NULL,
    kind         smallint NOT NULL,
    state        bigint[],
    record       bytea,
    version      bigint   NOT NULL DEFAULT 0,
    expires_at   bigint   NOT NULL
) WITH (fillfactor = 80);
-- statement
-- createSchema() skips this statement when the index exists: PostgreSQL takes a SHARE lock on the table before it
-- looks, which waits for every open transaction that wrote to the table and holds up the decisions after it. Run by
-- hand over a table in use, the statement waits so too.
CREATE INDEX IF NOT EXISTS guard_state_subject ON guard_state (subject_hash, key_hash);
-- statement
-- Floor and ceiling division. Not STRICT: the planner inlines a SQL function's body into the calling expression
-- only if that keeps the function's null behaviour, which a CASE body cannot promise for a STRICT function. A
-- helper that is not inlined is planned again in every transaction that calls it (a NULL argument gives NULL
-- either way).
CREATE OR REPLACE FUNCTION guard_state_fdiv(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT CASE WHEN a >= 0 THEN a / b ELSE -((b - 1 - a) / b) END';
-- statement
CREATE OR REPLACE FUNCTION guard_state_cdiv(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT CASE WHEN a <= 0 THEN -((-a) / b) ELSE (a + b - 1) / b END';
-- statement
-- A token bucket's level in ticks at p_now (TokenBucket.level): refilled since st[2], capped at cap (a level above it,
-- another bucket's with fewer ticks to a token, is full too); absent is full.
CREATE OR REPLACE FUNCTION guard_state_bucket_level(st bigint[], p_now bigint, cap bigint, rate bigint)
    RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT CASE WHEN st IS NULL THEN cap
                    WHEN p_now - st[2] <= 0 THEN least(st[1], cap)
                    WHEN p_now - st[2] >= guard_state_cdiv(cap - st[1], rate) THEN cap
                    ELSE st[1] + (p_now - st[2]) * rate END';
-- statement
-- Evaluates batches, each atomically, as if one after the other in the order given: the same semantics as
-- dev.guard.limit's reference functions and dev.guard.spi.ReferenceStorage, all in one round trip and one
-- transaction. Several bot threads' decisions may travel together in one call (JdbcStorage combines the decisions
-- that wait while others are in flight), so one transaction's start, commit and round trip serve them all.
-- p_keys, p_subject_keys, p_scopes and p_subjects describe the distinct keys of all the batches, sorted by key_hash
-- (the lock order). Per step: p_step_keys holds the index of its key in p_keys, and p_specs 5 numbers: [spec kind,
-- permits, parameter 1, parameter 2, parameter 3]. Spec kinds: 1 token bucket (capacity, ticks per micro, ticks per
-- token), 2 fixed window (limit, window), 3 sliding log (limit, window), 4 sliding counter (limit, bucket micros,
-- buckets), 5 cooldown (period), 6 gate, 7 member forbidden, 8 member required, 9 duplicate window (window,
-- capacity; the permits are the item). Per batch: p_ends holds the index of its last step, p_nows its time in
-- microseconds. p_sync false commits without waiting for the WAL flush; p_lock_ms above 0 sets lock_timeout for the
-- call (a shared call fails fast on a row locked elsewhere, and its decisions go again alone). Answers one packed
-- dev.guard.limit.Outcome per step, in the order given.
DROP FUNCTION IF EXISTS guard_state_evaluate(bigint, bytea[], bytea[], text[], text[], bigint[], boolean);
-- statement
DROP FUNCTION IF EXISTS guard_state_evaluate(bytea[], bytea[], text[], text[], int[], bigint[], int[], bigint[], boolean);
-- statement
CREATE OR REPLACE FUNCTION guard_state_evaluate(
    p_keys bytea[], p_subject_keys bytea[], p_scopes text[], p_subjects text[],
    p_step_keys int[], p_specs bigint[], p_ends int[], p_nows bigint[], p_sync boolean, p_lock_ms int)
RETURNS bigint[] LANGUAGE plpgsql AS $fn$
DECLARE
    never    CONSTANT bigint := -9223372036854775808;
    forever  CONSTANT bigint := 9223372036854775807;
    lead     CONSTANT bigint := 86400000000; -- LimitSpec.MAX_LEAD_MICROS
    nk       int := cardinality(p_keys);
    ns       int := cardinality(p_step_keys);
    outs     bigint[] := array_fill(0::bigint, ARRAY[ns]);
    -- Rows, as st_all holds them: [kind, expires_at, state length (-1: none), state...]. The absent row is first.
    st_all   bigint[] := ARRAY[0, 0, -1];
    -- Each key's row as the batches so far left it (its offset in st_all), and whether that changed.
    k_off    int[] := array_fill(0, ARRAY[nk]);
    k_dirty  boolean[] := array_fill(false, ARRAY[nk]);
    -- Per step: the row it writes if its batch admits (-1: none), and whether it found expired state.
    s_off    int[] := array_fill(-1, ARRAY[ns]);
    expired  boolean[] := array_fill(false, ARRAY[ns]);
    q        int;
    admitted boolean;
    r        record;
    p_now    bigint;
    bt       int;
    lo       int;
    i        int;
    k        int;
    b        int;
    sk       bigint;
    j        int;
    permits  bigint;
    p1       bigint;
    p2       bigint;
    p3       bigint;
    st       bigint[];
    nx       bigint[];
    o        bigint;
    lvl      bigint;
    cap      bigint;
    last     bigint;
    idx      bigint;
    cnt      bigint;
    excess   bigint;
    ttl      bigint;
    slots    bigint;
    cur      bigint;
    first    int;
    live     int;
    m        int;
    setting  text;
BEGIN
    IF NOT p_sync THEN
        -- Rate state is cheap to lose: do not wait for the WAL flush (a crash loses the last fraction of a second).
        -- An assignment, not PERFORM: a simple expression skips the executor start-up of a query.
        setting := set_config('synchronous_commit', 'off', true);
    END IF;
    IF p_lock_ms > 0 THEN
        setting := set_config('lock_timeout', p_lock_ms || 'ms', true);
    END IF;
    -- Lock (or create, then lock) each key in the order given, which is key_hash order: every transaction takes
    -- its keys in one global order, so none waits for another that waits for it. Index lookups only, one key at a
    -- time, so that no plan ever depends on the table's size.
    FOR k IN 1 .. nk LOOP
        -- Until this transaction holds the key's row: the existing row locked, or, on a first touch, an absent
        -- placeholder it inserted (which it holds until it ends; a concurrent first touch of the same key waits in
        -- its insert). An insert that lost the race to another transaction returns nothing, and the next round locks
        -- that transaction's row, or inserts again if the sweeper deleted it meanwhile.
        LOOP
            SELECT t.kind, t.state, t.expires_at INTO r FROM guard_state t WHERE t.key_hash = p_keys[k] FOR UPDATE;
            EXIT WHEN FOUND;
            INSERT INTO guard_state AS t (key_hash, subject_hash, scope, subject, kind, expires_at)
            VALUES (p_keys[k], p_subject_keys[k], p_scopes[k], p_subjects[k], 0, 0)
            ON CONFLICT (key_hash) DO NOTHING
            RETURNING t.kind, t.state, t.expires_at INTO r;
            EXIT WHEN FOUND;
        END LOOP;
        -- Kinds 1 to 3 hold state or a deadline (expires_at); records (4) and placeholders (0) read as absent.
        k_off[k] := cardinality(st_all);
        st_all := st_all || ARRAY[CASE WHEN r.kind BETWEEN 1 AND 3 THEN r.kind ELSE 0 END, r.expires_at,
                                  CASE WHEN r.kind = 1 THEN COALESCE(cardinality(r.state), -1) ELSE -1 END]
                         || CASE WHEN r.kind = 1 THEN r.state END;
    END LOOP;

    -- Every expression below is set up once per transaction, whatever the number of batches and steps; PostgreSQL
    -- keeps them in one memory context that grows by doubling blocks. Keep the set small: when it outgrows 120 kB,
    -- each transaction's next block costs the backend system calls and page faults (measured: half the throughput
    -- under 8 clients). Hence one pass per step that also prepares what the step writes if its batch admits.
    lo := 1;
    FOR bt IN 1 .. cardinality(p_ends) LOOP
        p_now := p_nows[bt];
        admitted := true;
        FOR i IN lo .. p_ends[bt] LOOP
            k := p_step_keys[i];
            j := 5 * i - 5;
            sk := p_specs[j + 1]; permits := p_specs[j + 2];
            p1 := p_specs[j + 3]; p2 := p_specs[j + 4]; p3 := p_specs[j + 5];
            st := NULL;
            q := k_off[k];
            IF st_all[q + 1] > 0 THEN
                IF st_all[q + 2] <= p_now THEN
                    expired[i] := true;
                ELSE
                    -- A limit's state, or a gate's or member's deadline (its expiry). State of another shape (another
                    -- limit under the same key: a filter changed) stays absent, as when the key has none: the size
                    -- each spec kind reads, any for a sliding log, pairs up to the capacity for a duplicate window.
                    -- So does state dated more than a day after now (LimitSpec.MAX_LEAD_MICROS): a window's index, a
                    -- timestamp at either end of a log or of a duplicate window's pairs, a bucket's last update;
                    -- another limit wrote it (a shorter window, a deadline that never ends), or a clock more than a
                    -- day ahead did.
                    st := CASE WHEN st_all[q + 1] > 1 THEN ARRAY[st_all[q + 2]]
                               WHEN st_all[q + 3] >= 0 THEN st_all[q + 4 : q + 3 + st_all[q + 3]] END;
                    IF NOT COALESCE(
                            cardinality(st) = (CASE WHEN sk IN (1, 2) THEN 2 WHEN sk = 4 THEN p3 + 2
                                                    WHEN sk = 3 THEN cardinality(st)
                                                    WHEN sk = 9 THEN CASE WHEN cardinality(st) % 2 = 0
                                                                           AND cardinality(st) <= 2 * p2
                                                                          THEN cardinality(st) ELSE -1 END
                                                    ELSE 1 END)
                            AND NOT COALESCE(CASE WHEN sk = 1 THEN st[2] > p_now + lead
                                                  WHEN sk IN (2, 4) THEN st[1] > guard_state_fdiv(p_now + lead, p2)
                                                  WHEN sk IN (3, 9) AND cardinality(st) > 0
                                                  THEN st[CASE WHEN sk = 3 THEN 1 ELSE 2 END] > p_now + lead
                                                       OR st[cardinality(st)] > p_now + lead
                                                  ELSE false END, false), false) THEN
                        st := NULL;
                    END IF;
                END IF;
            END IF;
            -- o: the outcome; nx and ttl: the state the step writes if its batch admits (nx NULL or no ttl: absent).
            nx := NULL;
            IF sk = 1 THEN
                cap := p1 * p3;
                IF permits > p1 THEN
                    o := never;
                ELSE
                    lvl := guard_state_bucket_level(st, p_now, cap, p2);
                    IF lvl >= permits * p3 THEN
                        o := (lvl - permits * p3) / p3;
                        -- A full bucket is a new one: it starts from now, whatever its last update.
                        last := CASE WHEN st IS NULL OR lvl = cap THEN p_now ELSE greatest(st[2], p_now) END;
                        nx := ARRAY[lvl - permits * p3, last];
                        -- The level at now after the commit is nx[1] itself (last >= now): full means absent.
                        ttl := CASE WHEN nx[1] = cap THEN 0
                                    ELSE greatest(0, last - p_now) + guard_state_cdiv(cap - nx[1], p2) END;
                    ELSE
                        -- A clock that went backwards leaves st[2] ahead of now; refill resumes only from there.
                        o := -greatest(1, CASE WHEN st IS NULL THEN 0 ELSE greatest(0, st[2] - p_now) END
                                          + guard_state_cdiv(permits * p3 - lvl, p2)) - 1;
                    END IF;
                END IF;
            ELSIF sk = 2 THEN
                IF permits > p1 THEN
                    o := never;
                ELSE
                    idx := guard_state_fdiv(p_now, p2);
                    IF st IS NOT NULL THEN idx := greatest(idx, st[1]); END IF;
                    cnt := CASE WHEN st IS NOT NULL AND st[1] = idx THEN st[2] ELSE 0 END;
                    IF cnt + permits <= p1 THEN
                        o := p1 - cnt - permits;
                        nx := ARRAY[idx, cnt + permits];
                        ttl := greatest(0, (idx + 1) * p2 - p_now);
                    ELSE
                        o := -greatest(1, (idx + 1) * p2 - p_now) - 1;
                    END IF;
                END IF;
            ELSIF sk = 3 THEN
                -- Timestamps out of ascending order are another limit's state (a duplicate window's item beside its
                -- admission time): absent.
                first := 2;
                WHILE first <= cardinality(st) AND st[first] >= st[first - 1] LOOP
                    first := first + 1;
                END LOOP;
                IF first <= cardinality(st) THEN
                    st := NULL;
                END IF;
                IF permits > p1 THEN
                    o := never;
                ELSE
                    first := 1;
                    WHILE st IS NOT NULL AND first <= cardinality(st) AND st[first] + p2 <= p_now LOOP
                        first := first + 1;
                    END LOOP;
                    live := CASE WHEN st IS NULL THEN 0 ELSE cardinality(st) - first + 1 END;
                    excess := live + permits - p1;
                    IF excess <= 0 THEN
                        o := -excess;
                        nx := CASE WHEN live > 0 THEN st[first : cardinality(st)] ELSE '{}'::bigint[] END;
                        last := CASE WHEN live > 0 THEN greatest(p_now, nx[live]) ELSE p_now END;
                        IF permits > 0 THEN
                            nx := nx || array_fill(last, ARRAY[permits::int]);
                        END IF;
                        ttl := CASE WHEN cardinality(nx) = 0 THEN 0
                                    ELSE greatest(0, nx[cardinality(nx)] + p2 - p_now) END;
                    ELSE
                        o := -greatest(1, st[first + excess::int - 1] + p2 - p_now) - 1;
                    END IF;
                END IF;
            ELSIF sk = 4 THEN
                IF permits > p1 THEN
                    o := never;
                ELSE
                    slots := p3 + 1;
                    cur := guard_state_fdiv(p_now, p2);
                    cnt := 0;
                    IF st IS NOT NULL THEN
                        cur := greatest(cur, st[1]);
                        -- WHILE, not FOR: a FOR loop's variable is an integer and bucket indexes are not.
                        idx := cur - p3;
                        WHILE idx <= cur LOOP
                            IF idx <= st[1] AND idx > st[1] - slots THEN
                                cnt := cnt + st[2 + (idx - slots * guard_state_fdiv(idx, slots))::int];
                            END IF;
                            idx := idx + 1;
                        END LOOP;
                    END IF;
                    excess := cnt + permits - p1;
                    IF excess <= 0 THEN
                        o := -excess;
                        IF st IS NULL THEN
                            nx := array_fill(0::bigint, ARRAY[slots::int + 1]);
                        ELSE
                            nx := st;
                            idx := greatest(st[1] + 1, cur - p3);
                            WHILE idx <= cur LOOP
                                nx[2 + (idx - slots * guard_state_fdiv(idx, slots))::int] := 0;
                                idx := idx + 1;
                            END LOOP;
                        END IF;
                        nx[1] := cur;
                        b := 2 + (cur - slots * guard_state_fdiv(cur, slots))::int;
                        nx[b] := nx[b] + permits;
                        ttl := greatest(0, (cur + slots) * p2 - p_now);
                    ELSE
                        cnt := 0;
                        o := NULL;
                        FOR m IN 1 .. slots LOOP
                            idx := cur - p3 + m - 1;
                            IF idx <= st[1] AND idx > st[1] - slots THEN
                                cnt := cnt + st[2 + (idx - slots * guard_state_fdiv(idx, slots))::int];
                            END IF;
                            IF cnt >= excess THEN
                                o := -greatest(1, (cur + m) * p2 - p_now) - 1;
                                EXIT;
                            END IF;
                        END LOOP;
                        IF o IS NULL THEN
                            RAISE EXCEPTION 'unreachable: permits % within limit %', permits, p1;
                        END IF;
                    END IF;
                END IF;
            ELSIF sk = 5 OR sk = 6 THEN
                IF st IS NULL OR p_now >= st[1] THEN
                    o := CASE WHEN sk = 6 THEN forever WHEN permits = 0 THEN 1 ELSE 0 END;
                    -- A cooldown that admits starts its period (none for zero permits: absent).
                    IF permits > 0 THEN
                        nx := ARRAY[p_now + p1];
                        ttl := greatest(0, p1);
                    END IF;
                ELSE
                    -- The wait until st[1] saturates at forever (never), as Saturated.until does: for a clock before
                    -- 1970 a deadline past forever + now (one that never ends) is further away than a bigint holds.
                    o := -greatest(1, least(st[1], forever + least(p_now, 0)) - p_now) - 1;
                END IF;
            ELSIF sk = 7 OR sk = 8 THEN
                IF (st IS NOT NULL AND p_now < st[1]) = (sk = 8) THEN
                    o := forever;
                ELSIF sk = 8 OR st[1] = forever THEN
                    o := never;
                ELSE
                    o := -greatest(1, least(st[1], forever + least(p_now, 0)) - p_now) - 1;
                END IF;
            ELSIF sk = 9 THEN
                -- Pairs [item, admitted at], oldest first: the item is rejected while a live pair holds it.
                o := 0;
                first := 1;
                WHILE st IS NOT NULL AND first < cardinality(st) AND st[first + 1] + p1 <= p_now LOOP
                    first := first + 2;
                END LOOP;
                b := first;
                WHILE st IS NOT NULL AND b < cardinality(st) LOOP
                    IF st[b] = permits THEN
                        o := -greatest(1, st[b + 1] + p1 - p_now) - 1;
                        EXIT;
                    END IF;
                    b := b + 2;
                END LOOP;
                IF o = 0 THEN
                    live := CASE WHEN st IS NULL THEN 0 ELSE cardinality(st) - first + 1 END;
                    IF live = 2 * p2 THEN
                        -- Full: the oldest item is forgotten early.
                        first := first + 2;
                        live := live - 2;
                    END IF;
                    nx := CASE WHEN live > 0 THEN st[first : cardinality(st)] ELSE '{}'::bigint[] END;
                    -- A clock that went backwards must not break the oldest-first order.
                    last := CASE WHEN live > 0 THEN greatest(p_now, nx[live]) ELSE p_now END;
                    nx := nx || ARRAY[permits, last];
                    ttl := greatest(0, last + p1 - p_now);
                END IF;
            ELSE
                RAISE EXCEPTION 'unknown spec kind %', sk;
            END IF;
            outs[i] := o;
            IF o < 0 THEN
                admitted := false;
            ELSIF sk <= 5 OR sk = 9 THEN
                -- Gates (6) and memberships (7, 8) only read. Expired state is absent from now on, even if the
                -- clock goes back later: a step that found it writes absent even when its batch rejects.
                IF nx IS NOT NULL AND ttl > 0 THEN
                    s_off[i] := cardinality(st_all);
                    st_all := st_all || ARRAY[1, p_now + ttl, cardinality(nx)] || nx;
                ELSE
                    s_off[i] := 0;
                END IF;
            END IF;
        END LOOP;

        FOR i IN lo .. p_ends[bt] LOOP
            IF expired[i] OR (admitted AND s_off[i] >= 0) THEN
                k := p_step_keys[i];
                k_dirty[k] := true;
                k_off[k] := CASE WHEN admitted THEN greatest(s_off[i], 0) ELSE 0 END;
            END IF;
        END LOOP;
        lo := p_ends[bt] + 1;
    END LOOP;

    -- Each key that changed is written once, as the last batch that changed it left it.
    FOR k IN 1 .. nk LOOP
        IF k_dirty[k] THEN
            q := k_off[k];
            UPDATE guard_state
               SET kind = st_all[q + 1], state = CASE WHEN st_all[q + 3] < 0 THEN NULL
                                                      ELSE st_all[q + 4 : q + 3 + st_all[q + 3]] END,
                   record = NULL, version = 0, expires_at = st_all[q + 2]
             WHERE key_hash = p_keys[k];
        END IF;
    END LOOP;
    RETURN outs;
END
$fn$;
-- statement
-- The schema's version, in the table's comment (Guard's own: it replaces any other). JdbcStorage needs this version:
-- over another one its health() is down and a storage warns once, at its first decision, until this file or
-- createSchema() has run again. createSchema() skips this statement when the table records this version already.
COMMENT ON TABLE guard_state IS 'Guard schema version 1';

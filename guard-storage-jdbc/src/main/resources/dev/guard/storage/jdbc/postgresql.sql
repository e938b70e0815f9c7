-- Guard's JDBC storage schema for PostgreSQL (11 or later). JdbcStorage.createSchema() runs this file with
-- "guard_state" replaced by the configured table name (and CREATE UNLOGGED TABLE when asked for); you may also run it
-- yourself with psql or a migration tool. Statements are separated by "-- statement" lines.
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
-- A token bucket's level in ticks at p_now (TokenBucket.level): refilled since st[2], capped at cap; absent is full.
CREATE OR REPLACE FUNCTION guard_state_bucket_level(st bigint[], p_now bigint, cap bigint, rate bigint)
    RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT CASE WHEN st IS NULL THEN cap
                    WHEN p_now - st[2] <= 0 THEN st[1]
                    WHEN p_now - st[2] >= guard_state_cdiv(cap - st[1], rate) THEN cap
                    ELSE st[1] + (p_now - st[2]) * rate END';
-- statement
-- Evaluates one batch atomically: the same semantics as dev.guard.limit's reference functions and
-- dev.guard.spi.ReferenceStorage, in one round trip. Steps arrive sorted by key_hash (the lock order); p_specs holds
-- 5 numbers per step: [spec kind, permits, parameter 1, parameter 2, parameter 3]. Spec kinds: 1 token bucket
-- (capacity, ticks per micro, ticks per token), 2 fixed window (limit, window), 3 sliding log (limit, window),
-- 4 sliding counter (limit, bucket micros, buckets), 5 cooldown (period), 6 gate, 7 member forbidden,
-- 8 member required, 9 duplicate window (window, capacity; the permits are the item). Answers one packed
-- dev.guard.limit.Outcome per step, in the order given.
CREATE OR REPLACE FUNCTION guard_state_evaluate(
    p_now bigint, p_keys bytea[], p_subject_keys bytea[], p_scopes text[], p_subjects text[], p_specs bigint[],
    p_sync boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $fn$
DECLARE
    never    CONSTANT bigint := -9223372036854775808;
    forever  CONSTANT bigint := 9223372036854775807;
    lead     CONSTANT bigint := 86400000000; -- LimitSpec.MAX_LEAD_MICROS
    n        int := cardinality(p_keys);
    outs     bigint[] := array_fill(0::bigint, ARRAY[n]);
    st_all   bigint[] := '{}';
    st_off   int[] := array_fill(0, ARRAY[n]);
    st_len   int[] := array_fill(-1, ARRAY[n]);
    expired  boolean[] := array_fill(false, ARRAY[n]);
    admitted boolean := true;
    r        record;
    i        int;
    j        int;
    b        int;
    sk       bigint;
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
    -- Lock (or create, then lock) each key in the order given, which is key_hash order: every transaction takes
    -- its keys in one global order, so none waits for another that waits for it. Index lookups only, one key at a
    -- time, so that no plan ever depends on the table's size.
    FOR i IN 1 .. n LOOP
        -- Until this transaction holds the key's row: the existing row locked, or, on a first touch, an absent
        -- placeholder it inserted (which it holds until it ends; a concurrent first touch of the same key waits in
        -- its insert). An insert that lost the race to another transaction returns nothing, and the next round locks
        -- that transaction's row, or inserts again if the sweeper deleted it meanwhile.
        LOOP
            SELECT t.kind, t.state, t.expires_at INTO r FROM guard_state t WHERE t.key_hash = p_keys[i] FOR UPDATE;
            EXIT WHEN FOUND;
            INSERT INTO guard_state AS t (key_hash, subject_hash, scope, subject, kind, expires_at)
            VALUES (p_keys[i], p_subject_keys[i], p_scopes[i], p_subjects[i], 0, 0)
            ON CONFLICT (key_hash) DO NOTHING
            RETURNING t.kind, t.state, t.expires_at INTO r;
            EXIT WHEN FOUND;
        END LOOP;
        IF r.kind BETWEEN 1 AND 3 THEN
            IF r.expires_at > p_now THEN
                st := CASE WHEN r.kind = 1 THEN r.state ELSE ARRAY[r.expires_at] END;
                -- State of another shape (another limit under the same key: a filter changed) stays absent, as
                -- when the key has none: the size each spec kind reads, any for a sliding log, pairs up to the
                -- capacity for a duplicate window. So does state dated more than a day after now
                -- (LimitSpec.MAX_LEAD_MICROS): a window's index, a timestamp at either end of a log or of a duplicate
                -- window's pairs, a bucket's last update; another limit wrote it (a shorter window, a deadline that
                -- never ends), or a clock more than a day ahead did.
                sk := p_specs[(i - 1) * 5 + 1];
                IF cardinality(st) = (CASE WHEN sk IN (1, 2) THEN 2 WHEN sk = 4 THEN p_specs[(i - 1) * 5 + 5] + 2
                                           WHEN sk = 3 THEN cardinality(st)
                                           WHEN sk = 9 THEN CASE WHEN cardinality(st) % 2 = 0
                                                                  AND cardinality(st) <= 2 * p_specs[(i - 1) * 5 + 4]
                                                                 THEN cardinality(st) ELSE -1 END
                                           ELSE 1 END)
                   AND NOT COALESCE(CASE WHEN sk = 1 THEN st[2] > p_now + lead
                                         WHEN sk IN (2, 4)
                                         THEN st[1] > guard_state_fdiv(p_now + lead, p_specs[(i - 1) * 5 + 4])
                                         WHEN sk IN (3, 9) AND cardinality(st) > 0
                                         THEN st[CASE WHEN sk = 3 THEN 1 ELSE 2 END] > p_now + lead
                                              OR st[cardinality(st)] > p_now + lead
                                         ELSE false END, false) THEN
                    st_off[i] := cardinality(st_all);
                    st_len[i] := cardinality(st);
                    st_all := st_all || st;
                END IF;
            ELSE
                expired[i] := true;
            END IF;
        END IF;
    END LOOP;

    FOR i IN 1 .. n LOOP
        j := (i - 1) * 5;
        sk := p_specs[j + 1]; permits := p_specs[j + 2];
        p1 := p_specs[j + 3]; p2 := p_specs[j + 4]; p3 := p_specs[j + 5];
        st := CASE WHEN st_len[i] < 0 THEN NULL ELSE st_all[st_off[i] + 1 : st_off[i] + st_len[i]] END;
        IF sk = 1 THEN
            cap := p1 * p3;
            IF permits > p1 THEN
                o := never;
            ELSE
                lvl := guard_state_bucket_level(st, p_now, cap, p2);
                IF lvl >= permits * p3 THEN
                    o := (lvl - permits * p3) / p3;
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
                ELSE
                    o := -greatest(1, (idx + 1) * p2 - p_now) - 1;
                END IF;
            END IF;
        ELSIF sk = 3 THEN
            IF permits > p1 THEN
                o := never;
            ELSE
                first := 1;
                WHILE st IS NOT NULL AND first <= cardinality(st) AND st[first] + p2 <= p_now LOOP
                    first := first + 1;
                END LOOP;
                cnt := CASE WHEN st IS NULL THEN 0 ELSE cardinality(st) - first + 1 END;
                excess := cnt + permits - p1;
                IF excess <= 0 THEN
                    o := -excess;
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
            ELSE
                o := -greatest(1, st[1] - p_now) - 1;
            END IF;
        ELSIF sk = 7 OR sk = 8 THEN
            IF (st IS NOT NULL AND p_now < st[1]) = (sk = 8) THEN
                o := forever;
            ELSIF sk = 8 OR st[1] = forever THEN
                o := never;
            ELSE
                o := -greatest(1, st[1] - p_now) - 1;
            END IF;
        ELSIF sk = 9 THEN
            -- Pairs [item, admitted at], oldest first: the item is rejected while a live pair holds it.
            o := 0;
            first := 1;
            WHILE st IS NOT NULL AND first < cardinality(st) AND st[first + 1] + p1 <= p_now LOOP
                first := first + 2;
            END LOOP;
            WHILE st IS NOT NULL AND first < cardinality(st) LOOP
                IF st[first] = permits THEN
                    o := -greatest(1, st[first + 1] + p1 - p_now) - 1;
                    EXIT;
                END IF;
                first := first + 2;
            END LOOP;
        ELSE
            RAISE EXCEPTION 'unknown spec kind %', sk;
        END IF;
        outs[i] := o;
        IF o < 0 THEN
            admitted := false;
        END IF;
    END LOOP;

    FOR i IN 1 .. n LOOP
        j := (i - 1) * 5;
        sk := p_specs[j + 1]; permits := p_specs[j + 2];
        p1 := p_specs[j + 3]; p2 := p_specs[j + 4]; p3 := p_specs[j + 5];
        IF admitted AND (sk <= 5 OR sk = 9) THEN
            st := CASE WHEN st_len[i] < 0 THEN NULL ELSE st_all[st_off[i] + 1 : st_off[i] + st_len[i]] END;
            IF sk = 1 THEN
                cap := p1 * p3;
                lvl := guard_state_bucket_level(st, p_now, cap, p2);
                last := CASE WHEN st IS NULL THEN p_now ELSE greatest(st[2], p_now) END;
                nx := ARRAY[lvl - permits * p3, last];
                -- The level at now after the commit is nx[1] itself (last >= now): full means absent.
                ttl := CASE WHEN nx[1] = cap THEN 0
                            ELSE greatest(0, last - p_now) + guard_state_cdiv(cap - nx[1], p2) END;
            ELSIF sk = 2 THEN
                idx := guard_state_fdiv(p_now, p2);
                IF st IS NOT NULL THEN idx := greatest(idx, st[1]); END IF;
                cnt := CASE WHEN st IS NOT NULL AND st[1] = idx THEN st[2] ELSE 0 END;
                nx := ARRAY[idx, cnt + permits];
                ttl := greatest(0, (idx + 1) * p2 - p_now);
            ELSIF sk = 3 THEN
                first := 1;
                WHILE st IS NOT NULL AND first <= cardinality(st) AND st[first] + p2 <= p_now LOOP
                    first := first + 1;
                END LOOP;
                live := CASE WHEN st IS NULL THEN 0 ELSE cardinality(st) - first + 1 END;
                nx := CASE WHEN live > 0 THEN st[first : cardinality(st)] ELSE '{}'::bigint[] END;
                last := CASE WHEN live > 0 THEN greatest(p_now, nx[live]) ELSE p_now END;
                IF permits > 0 THEN
                    nx := nx || array_fill(last, ARRAY[permits::int]);
                END IF;
                ttl := CASE WHEN cardinality(nx) = 0 THEN 0 ELSE greatest(0, nx[cardinality(nx)] + p2 - p_now) END;
            ELSIF sk = 4 THEN
                slots := p3 + 1;
                cur := guard_state_fdiv(p_now, p2);
                IF st IS NULL THEN
                    nx := array_fill(0::bigint, ARRAY[slots::int + 1]);
                ELSE
                    cur := greatest(cur, st[1]);
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
            ELSIF sk = 9 THEN
                first := 1;
                WHILE st IS NOT NULL AND first < cardinality(st) AND st[first + 1] + p1 <= p_now LOOP
                    first := first + 2;
                END LOOP;
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
            ELSE -- 5, cooldown
                IF permits = 0 THEN
                    nx := st;
                ELSE
                    nx := ARRAY[p_now + p1];
                END IF;
                ttl := CASE WHEN nx IS NULL THEN 0 ELSE greatest(0, nx[1] - p_now) END;
            END IF;
            IF nx IS NULL OR ttl <= 0 THEN
                UPDATE guard_state SET kind = 0, state = NULL, record = NULL, version = 0, expires_at = 0
                 WHERE key_hash = p_keys[i];
            ELSE
                UPDATE guard_state SET kind = 1, state = nx, record = NULL, version = 0, expires_at = p_now + ttl
                 WHERE key_hash = p_keys[i];
            END IF;
        ELSIF expired[i] THEN
            -- Expired state is absent from now on, even if the clock goes back later.
            UPDATE guard_state SET kind = 0, state = NULL, record = NULL, version = 0, expires_at = 0
             WHERE key_hash = p_keys[i];
        END IF;
    END LOOP;
    RETURN outs;
END
$fn$;

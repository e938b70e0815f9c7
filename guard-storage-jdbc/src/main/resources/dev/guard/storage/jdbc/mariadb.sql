-- Guard's JDBC storage schema for MariaDB (10.6 or later) and MySQL (8.0 or later). JdbcStorage.createSchema() runs
-- this file with the configured table name in place of guard_state, in backticks where it names the table, so that a
-- reserved word works too; you may also run it yourself with the mysql client or a migration tool. Statements are
-- separated by "-- statement" lines.
--
-- One row per state key. key_hash is the identity: SHA-256 over the key's UTF-16 code units, length-prefixed, so
-- that keys of any content and length (InnoDB cannot index 10 KB of text) fit a fixed-size primary key; scope and
-- subject keep the full key for people (NUL characters are stored as U+FFFD). kind: 0 absent (a placeholder from a
-- first touch), 1 limit state, 2 gate, 3 set member, 4 record. state is a limit's long[] as big-endian bytes. A row
-- whose expires_at (microseconds since the epoch) is not after "now" is absent. There is deliberately no index on
-- expires_at: every decision updates it; the sweeper walks the primary key instead.

CREATE TABLE IF NOT EXISTS guard_state (
    key_hash     BINARY(32)  NOT NULL PRIMARY KEY,
    subject_hash BINARY(32)  NOT NULL,
    scope        MEDIUMTEXT  NOT NULL,
    subject      MEDIUMTEXT  NOT NULL,
    kind         TINYINT     NOT NULL,
    state        MEDIUMBLOB  NULL,
    record       MEDIUMBLOB  NULL,
    version      BIGINT      NOT NULL DEFAULT 0,
    expires_at   BIGINT      NOT NULL,
    KEY guard_state_subject (subject_hash, key_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin ROW_FORMAT = DYNAMIC;
-- statement
-- The schema's version, in the table's comment (Guard's own: it replaces any other). JdbcStorage needs this version:
-- over another one its health() is down and a storage warns once, at its first decision, until this file or
-- createSchema() has run again. createSchema() skips this statement when the table records this version already:
-- an ALTER TABLE waits for every open transaction on the table, even when it changes nothing, and holds up the
-- decisions that come after it meanwhile.
ALTER TABLE guard_state COMMENT = 'Guard schema version 1';

-- Guard's JDBC storage schema for H2 (2.x). JdbcStorage.createSchema() runs this file with the configured table name
-- in place of guard_state: quoted where it names the table, so that a reserved word works too, in the case that H2
-- gives unquoted names (upper case unless DATABASE_TO_LOWER or DATABASE_TO_UPPER say otherwise). Statements are
-- separated by "-- statement" lines.
--
-- One row per state key. key_hash is the identity: SHA-256 over the key's UTF-16 code units, length-prefixed; scope
-- and subject keep the full key for people (NUL characters are stored as U+FFFD). kind: 0 absent (a placeholder
-- from a first touch), 1 limit state, 2 gate, 3 set member, 4 record. state is a limit's long[] as big-endian bytes.
-- A row whose expires_at (microseconds since the epoch) is not after "now" is absent.

CREATE TABLE IF NOT EXISTS guard_state (
    key_hash     BINARY(32)        NOT NULL PRIMARY KEY,
    subject_hash BINARY(32)        NOT NULL,
    scope        CHARACTER VARYING NOT NULL,
    subject      CHARACTER VARYING NOT NULL,
    kind         TINYINT           NOT NULL,
    state        BINARY VARYING,
    record       BINARY VARYING,
    version      BIGINT            NOT NULL DEFAULT 0,
    expires_at   BIGINT            NOT NULL
);
-- statement
CREATE INDEX IF NOT EXISTS guard_state_subject ON guard_state (subject_hash, key_hash);
-- statement
-- The schema's version, in the table's comment (Guard's own: it replaces any other). JdbcStorage needs this version:
-- over another one its health() is down and a storage warns once, at its first decision, until this file or
-- createSchema() has run again. createSchema() skips this statement when the table records this version already.
COMMENT ON TABLE guard_state IS 'Guard schema version 1';

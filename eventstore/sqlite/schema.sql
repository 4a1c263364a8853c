-- The event log. One row per event; bytes are the canonical envelope stored
-- verbatim, leaf_hash is SHA-256(0x00 || bytes). position is the rowid:
-- 1, 2, 3 … assigned by the single writer inside its transaction.
CREATE TABLE IF NOT EXISTS events (
	position    INTEGER PRIMARY KEY,
	stream      TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	id          TEXT    NOT NULL UNIQUE,
	type        TEXT    NOT NULL,
	recorded_at INTEGER NOT NULL, -- Unix microseconds, UTC
	bytes       BLOB    NOT NULL,
	leaf_hash   BLOB    NOT NULL,
	UNIQUE (stream, version)
);

-- The event log. One row per event; bytes are the canonical envelope stored
-- verbatim, leaf_hash is SHA-256(0x00 || bytes).
CREATE TABLE IF NOT EXISTS events (
	position    BIGINT      PRIMARY KEY,
	stream      TEXT        NOT NULL,
	version     BIGINT      NOT NULL,
	id          TEXT        NOT NULL UNIQUE,
	type        TEXT        NOT NULL,
	recorded_at TIMESTAMPTZ NOT NULL,
	bytes       BYTEA       NOT NULL,
	leaf_hash   BYTEA       NOT NULL,
	UNIQUE (stream, version)
);

-- The log's tail: its one row is locked (SELECT … FOR UPDATE) by every
-- appending transaction until it commits. That serializes appends across
-- processes, so positions are assigned in commit order with no gaps, and a
-- reader never sees position n+1 committed before n.
CREATE TABLE IF NOT EXISTS log_tail (
	singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
	position  BIGINT  NOT NULL
);
INSERT INTO log_tail (singleton, position) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;

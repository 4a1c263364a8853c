package commands

import (
	"context"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Migrate creates or updates the write side's state database: its own
// tables and identity's (users, tokens, node credentials), which share one
// migration history. Both commands.New and identity.New call it.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	return db.Migrate(ctx, "commands", migrations(db.Dialect))
}

// migrations are the state database's tables. Steps are only ever appended.
func migrations(sqldb.Dialect) []string {
	return []string{
		// Identity: personal data lives here, never in events, so a person
		// can be erased without breaking the log. email_key is the email
		// lower-cased, for case-insensitive uniqueness.
		`CREATE TABLE users (
			id            TEXT   PRIMARY KEY,
			email         TEXT   NOT NULL,
			email_key     TEXT   NOT NULL UNIQUE,
			name          TEXT   NOT NULL,
			password_hash TEXT   NOT NULL,
			role          TEXT   NOT NULL,
			created_at    BIGINT NOT NULL
		)`,
		// Idempotency keys: the first answer the API gave to each key
		// (package idempotency).
		`CREATE TABLE idempotency_keys (
			scope        TEXT   NOT NULL,
			key          TEXT   NOT NULL,
			request_hash TEXT   NOT NULL,
			response     TEXT,
			created_at   BIGINT NOT NULL,
			PRIMARY KEY (scope, key)
		)`,
		// Reactor checkpoints: the last log position each reactor handled.
		`CREATE TABLE reactor_checkpoints (
			name     TEXT   PRIMARY KEY,
			position BIGINT NOT NULL
		)`,
		// Refresh tokens, stored as SHA-256 hashes. Rotation marks a token
		// used; presenting a used token again revokes its whole family.
		`CREATE TABLE refresh_tokens (
			token_hash TEXT   PRIMARY KEY,
			family     TEXT   NOT NULL,
			user_id    TEXT   NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL,
			used_at    BIGINT,
			revoked_at BIGINT
		)`,
		`CREATE INDEX refresh_tokens_family ON refresh_tokens (family)`,
		// One-time node enrollment tokens issued by an admin, and the
		// credentials enrolled nodes authenticate with; both hashed.
		`CREATE TABLE enrollment_tokens (
			token_hash TEXT   PRIMARY KEY,
			created_by TEXT   NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL,
			used_at    BIGINT,
			node_id    TEXT
		)`,
		`CREATE TABLE node_credentials (
			token_hash TEXT   PRIMARY KEY,
			node_id    TEXT   NOT NULL,
			created_at BIGINT NOT NULL
		)`,
		// Login limits (identity/loginlimits.go): failures counted per key
		// in a window, and the one verification in flight per account.
		// Shared by every API process on PostgreSQL.
		`CREATE TABLE login_failures (
			key          TEXT    PRIMARY KEY,
			window_start BIGINT  NOT NULL,
			count        INTEGER NOT NULL
		)`,
		`CREATE TABLE login_claims (
			account    TEXT   PRIMARY KEY,
			expires_at BIGINT NOT NULL
		)`,
	}
}

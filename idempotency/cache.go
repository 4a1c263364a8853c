// Package idempotency keeps the first answer the API gave to each
// Idempotency-Key, in the idempotency_keys table of the write side's state
// database, so a retried request is answered as the first one was
// (http.AnswerCache is the interface the API declares for it).
//
// The cache does not make commands exactly-once: they are already, because
// a command derives the ids of what it creates from the key
// (commands.Actor). It makes a retry see the first answer, and the same key
// sent with another request a conflict. Where idempotency lives: ids from
// keys in commands, the middleware that claims and keeps answers in http,
// the stored answers here.
package idempotency

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// AnswerCache keeps the first answer given to each idempotency key.
type AnswerCache struct {
	db  *sqldb.DB
	now func() time.Time
}

// New returns the answer cache of db, the write side's state database,
// creating its table if needed (commands.Migrate: the state database has
// one migration history). A nil now is time.Now.
func New(ctx context.Context, db *sqldb.DB, now func() time.Time) (*AnswerCache, error) {
	if err := commands.Migrate(ctx, db); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &AnswerCache{db: db, now: now}, nil
}

// Claim records (scope, key) with requestHash if new, and returns the stored
// answer (nil while none is stored). It returns domain.ErrIdempotencyConflict
// when the key was claimed with another request hash.
func (c *AnswerCache) Claim(ctx context.Context, scope, key, requestHash string) ([]byte, error) {
	if _, err := c.db.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		scope, key, requestHash, c.now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	var storedHash string
	var answer sql.NullString
	if err := c.db.QueryRow(ctx, `SELECT request_hash, response FROM idempotency_keys WHERE scope = ? AND key = ?`, scope, key).
		Scan(&storedHash, &answer); err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	if storedHash != requestHash {
		return nil, fmt.Errorf("%w: Idempotency-Key %q was used with a different request", domain.ErrIdempotencyConflict, key)
	}
	if !answer.Valid {
		return nil, nil
	}
	return []byte(answer.String), nil
}

// Keep stores the answer of a claimed key; an answer stored before (by a
// concurrent first request) is kept instead.
func (c *AnswerCache) Keep(ctx context.Context, scope, key string, answer []byte) error {
	if _, err := c.db.Exec(ctx, `UPDATE idempotency_keys SET response = ? WHERE scope = ? AND key = ? AND response IS NULL`, string(answer), scope, key); err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	return nil
}

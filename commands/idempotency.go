package commands

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// DeriveID returns an id derived from a command's scope and idempotency key,
// so a retried command creates the same job (and its events the same ids).
func DeriveID(kind, scope, key string) string { return eventstore.DeriveEventID(kind, scope, key) }

// newID returns the id of what a command creates: derived from the actor's
// idempotency key, so a retried request creates the same thing (never a
// second one), or a fresh UUIDv7 when there is no key.
func (a Actor) newID(kind, scope string) string {
	if a.IdempotencyKey == "" {
		return uuid.Must(uuid.NewV7()).String()
	}
	return DeriveID(kind, scope, a.IdempotencyKey)
}

// AnswerCache keeps the first answer given to each idempotency key, in the
// idempotency_keys table: the HTTP API replays it to a retried request.
// Commands do not need it to be exactly-once (they derive their ids from the
// key); it makes a retry see the first answer.
type AnswerCache struct {
	db  *sqldb.DB
	now func() time.Time
}

// NewAnswerCache returns the answer cache of the service's database.
func (s *Service) NewAnswerCache() *AnswerCache { return &AnswerCache{db: s.db, now: s.now} }

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

package commands

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// IdempotencyKeyBytesMax bounds an idempotency key.
const IdempotencyKeyBytesMax = 255

// Idempotent runs fn at most once to success per (scope, key): a repeat
// with the same request returns the first result; the same key with a
// different request is domain.ErrIdempotencyConflict. Without a key it just
// runs fn. A failed fn stores nothing, so the client may retry. Two
// concurrent first requests may both run fn; commands make that safe by
// deriving their ids from the key (DeriveID), and both return the result
// stored first.
func Idempotent[R any](ctx context.Context, s *Service, scope, key string, request any, fn func(context.Context) (R, error)) (R, error) {
	var zero R
	if key == "" {
		return fn(ctx)
	}
	if len(key) > IdempotencyKeyBytesMax {
		return zero, domain.Errorf(domain.CodeInvalid, "Idempotency-Key: longer than %d bytes", IdempotencyKeyBytesMax)
	}
	hash, err := requestHash(request)
	if err != nil {
		return zero, err
	}
	stored, err := s.claimKey(ctx, scope, key, hash)
	if err != nil || stored != nil {
		return decodeStored[R](stored, err)
	}
	result, err := fn(ctx)
	if err != nil {
		return zero, err
	}
	b, err := json.Marshal(result)
	if err != nil {
		return zero, fmt.Errorf("encode result: %w", err)
	}
	if _, err := s.db.Exec(ctx, `UPDATE idempotency_keys SET response = ? WHERE scope = ? AND key = ? AND response IS NULL`, string(b), scope, key); err != nil {
		return zero, fmt.Errorf("store idempotent result: %w", err)
	}
	stored, err = s.claimKey(ctx, scope, key, hash)
	return decodeStored[R](stored, err)
}

// DeriveID returns an id derived from a command's scope and idempotency key,
// so a retried command creates the same job (and its events the same ids).
func DeriveID(kind, scope, key string) string { return eventstore.DeriveEventID(kind, scope, key) }

// claimKey records the key with its request hash if new, and returns the
// stored response (nil while none is stored) or ErrIdempotencyConflict.
func (s *Service) claimKey(ctx context.Context, scope, key, hash string) ([]byte, error) {
	if _, err := s.db.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		scope, key, hash, s.now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	var storedHash string
	var response sql.NullString
	if err := s.db.QueryRow(ctx, `SELECT request_hash, response FROM idempotency_keys WHERE scope = ? AND key = ?`, scope, key).
		Scan(&storedHash, &response); err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	if storedHash != hash {
		return nil, fmt.Errorf("%w: Idempotency-Key %q was used with a different request", domain.ErrIdempotencyConflict, key)
	}
	if !response.Valid {
		return nil, nil
	}
	return []byte(response.String), nil
}

func decodeStored[R any](b []byte, err error) (R, error) {
	var r R
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode idempotent result: %w", err)
	}
	return r, nil
}

func requestHash(request any) (string, error) {
	b, err := json.Marshal(request)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Token lifetimes and prefixes.
const (
	// RefreshTokenTTL is how long a refresh token may be used once.
	RefreshTokenTTL = 30 * 24 * time.Hour
	// EnrollmentTokenTTL is how long an admin-issued enrollment token lasts.
	EnrollmentTokenTTL = 24 * time.Hour
	refreshPrefix      = "rtr_"
	enrollPrefix       = "rte_"
	nodePrefix         = "rtn_"
	tokenBytes         = 32
)

// ErrInvalidToken is returned for a refresh, enrollment or node token that
// is unknown, expired, revoked or already used.
var ErrInvalidToken = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid or expired token"}

// newSecret returns a random token with prefix and the hash stored for it.
func newSecret(prefix string) (token, hash string) {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, tokenHash(token)
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// IssueRefreshToken starts a new refresh-token family for user.
func (s *Service) IssueRefreshToken(ctx context.Context, user domain.UserID) (string, error) {
	return insertRefresh(ctx, s.db, user, uuid.Must(uuid.NewV7()).String(), s.now())
}

// execer is a database or a transaction.
type execer interface {
	Exec(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// insertRefresh stores a new refresh token of family and returns it.
func insertRefresh(ctx context.Context, db execer, user domain.UserID, family string, now time.Time) (string, error) {
	token, hash := newSecret(refreshPrefix)
	_, err := db.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hash, family, string(user), now.UnixMicro(), now.Add(RefreshTokenTTL).UnixMicro())
	if err != nil {
		return "", fmt.Errorf("store refresh token: %w", err)
	}
	return token, nil
}

// RotateRefreshToken exchanges a refresh token for a new one of the same
// family and returns the user. A token presented a second time means it was
// stolen or replayed: the whole family is revoked and ErrInvalidToken
// returned, as for an unknown, expired or revoked token.
//
// One transaction locks the token's row, marks it used and issues its
// successor or, on reuse, revokes the family; and a family with any revoked
// token is refused as a whole. So of concurrent refreshes with one token
// exactly one is rotated, and a successor issued while the reuse was being
// detected is revoked with its family.
func (s *Service) RotateRefreshToken(ctx context.Context, token string) (domain.UserID, string, error) {
	if !strings.HasPrefix(token, refreshPrefix) {
		return "", "", ErrInvalidToken
	}
	hash, now := tokenHash(token), s.now()
	var user, next string
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		lock := ""
		if tx.Dialect == sqldb.Postgres { // SQLite's write transactions are already exclusive
			lock = " FOR UPDATE"
		}
		var family string
		var expires int64
		var used, revoked sql.NullInt64
		err := tx.QueryRow(ctx, `SELECT family, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = ?`+lock, hash).
			Scan(&family, &user, &expires, &used, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read refresh token: %w", err)
		}
		var familyRevoked bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family = ? AND revoked_at IS NOT NULL)`, family).Scan(&familyRevoked); err != nil {
			return fmt.Errorf("read refresh token family: %w", err)
		}
		switch {
		case revoked.Valid || familyRevoked || now.UnixMicro() > expires:
			return nil
		case used.Valid: // presented again: stolen or replayed
			_, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`, now.UnixMicro(), family)
			return err
		}
		res, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`, now.UnixMicro(), hash)
		if err != nil {
			return fmt.Errorf("rotate refresh token: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("rotate refresh token: %d rows marked used, want 1", n)
		}
		next, err = insertRefresh(ctx, tx, domain.UserID(user), family, now)
		return err
	})
	if err != nil {
		return "", "", err
	}
	if next == "" {
		return "", "", ErrInvalidToken
	}
	return domain.UserID(user), next, nil
}

// RevokeRefreshToken revokes the token's whole family (logout). An unknown
// token is not an error.
func (s *Service) RevokeRefreshToken(ctx context.Context, token string) error {
	var family string
	err := s.db.QueryRow(ctx, `SELECT family FROM refresh_tokens WHERE token_hash = ?`, tokenHash(token)).Scan(&family)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read refresh token: %w", err)
	}
	return s.revokeFamily(ctx, family)
}

func (s *Service) revokeFamily(ctx context.Context, family string) error {
	_, err := s.db.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`, s.now().UnixMicro(), family)
	return err
}

// IssueEnrollmentToken returns a one-time token a node enrolls with.
func (s *Service) IssueEnrollmentToken(ctx context.Context, admin string) (string, time.Time, error) {
	token, hash := newSecret(enrollPrefix)
	now := s.now()
	expires := now.Add(EnrollmentTokenTTL)
	_, err := s.db.Exec(ctx, `INSERT INTO enrollment_tokens (token_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		hash, admin, now.UnixMicro(), expires.UnixMicro())
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store enrollment token: %w", err)
	}
	return token, expires, nil
}

// EnrollWithToken consumes a one-time enrollment token, enrolls a new node
// and returns its id and the credential it authenticates with from now on.
// It returns ErrInvalidToken for an unknown, expired or used token, and the
// errors of EnrollNode (the token is then not consumed).
func (s *Service) EnrollWithToken(ctx context.Context, token string, e domain.Enrollment) (domain.NodeID, string, error) {
	hash, now := tokenHash(token), s.now()
	var expires int64
	var used sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT expires_at, used_at FROM enrollment_tokens WHERE token_hash = ?`, hash).Scan(&expires, &used)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (used.Valid || now.UnixMicro() > expires)) {
		return "", "", ErrInvalidToken
	}
	if err != nil {
		return "", "", fmt.Errorf("read enrollment token: %w", err)
	}
	id := domain.NodeID(commands.DeriveID("node", "enrollment", hash)) // a retried enrollment makes the same node
	res, err := s.db.Exec(ctx, `UPDATE enrollment_tokens SET used_at = ?, node_id = ? WHERE token_hash = ? AND used_at IS NULL`, now.UnixMicro(), string(id), hash)
	if err != nil {
		return "", "", fmt.Errorf("consume enrollment token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", "", ErrInvalidToken
	}
	if _, err := s.nodes.EnrollNode(ctx, commands.Actor{ID: "node:" + string(id)}, id, e); err != nil {
		s.db.Exec(ctx, `UPDATE enrollment_tokens SET used_at = NULL, node_id = NULL WHERE token_hash = ?`, hash)
		return "", "", err
	}
	cred, credHash := newSecret(nodePrefix)
	if _, err := s.db.Exec(ctx, `INSERT INTO node_credentials (token_hash, node_id, created_at) VALUES (?, ?, ?)`, credHash, string(id), now.UnixMicro()); err != nil {
		return "", "", fmt.Errorf("store node credential: %w", err)
	}
	return id, cred, nil
}

// RotateNodeCredential replaces the credentials of an active node with a new
// one, which it returns: the old one is refused from now on. It returns
// domain.ErrNodeNotFound and domain.ErrNodeRetired.
func (s *Service) RotateNodeCredential(ctx context.Context, id domain.NodeID) (string, error) {
	n, err := s.nodes.Node(ctx, id)
	if err != nil {
		return "", err
	}
	switch {
	case !n.Enrolled():
		return "", fmt.Errorf("%w: %s", domain.ErrNodeNotFound, id)
	case n.Retired():
		return "", fmt.Errorf("%w: %s", domain.ErrNodeRetired, id)
	}
	cred, credHash := newSecret(nodePrefix)
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM node_credentials WHERE node_id = ?`, string(id)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO node_credentials (token_hash, node_id, created_at) VALUES (?, ?, ?)`, credHash, string(id), s.now().UnixMicro())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("rotate node credential: %w", err)
	}
	return cred, nil
}

// revokeNodeCredentials deletes every credential of node.
func (s *Service) revokeNodeCredentials(ctx context.Context, node domain.NodeID) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM node_credentials WHERE node_id = ?`, string(node)); err != nil {
		return fmt.Errorf("revoke node credentials: %w", err)
	}
	return nil
}

// AuthenticateNode returns the node a credential belongs to, or ErrInvalidToken.
func (s *Service) AuthenticateNode(ctx context.Context, credential string) (domain.NodeID, error) {
	if !strings.HasPrefix(credential, nodePrefix) {
		return "", ErrInvalidToken
	}
	var id string
	err := s.db.QueryRow(ctx, `SELECT node_id FROM node_credentials WHERE token_hash = ?`, tokenHash(credential)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrInvalidToken
	}
	if err != nil {
		return "", fmt.Errorf("read node credential: %w", err)
	}
	return domain.NodeID(id), nil
}

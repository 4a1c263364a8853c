package identity_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/identity"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

var ctx = context.Background()

// newService returns identity over a fresh SQLite event store and state
// database, with the write side as its Nodes.
func newService(tb testing.TB) (*identity.Service, *commands.Service) {
	tb.Helper()
	dir := tb.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		tb.Fatal(err)
	}
	db, err := sqldb.OpenSQLite(filepath.Join(dir, "state.db"))
	if err != nil {
		tb.Fatal(err)
	}
	return newServiceOn(tb, store, db)
}

// newServiceOn returns identity over store and db, closed when tb ends, with
// the write side as its Nodes.
func newServiceOn(tb testing.TB, store eventstore.Store, db *sqldb.DB) (*identity.Service, *commands.Service) {
	tb.Helper()
	tb.Cleanup(func() { db.Close(); store.Close() })
	d := dispatch.New(nil, 0, nil)
	svc, err := commands.New(ctx, commands.Config{Store: d.Watch(store), DB: db, Dispatcher: d})
	if err != nil {
		tb.Fatal(err)
	}
	id, err := identity.New(ctx, identity.Config{DB: db, Nodes: svc, PasswordCost: bcrypt.MinCost})
	if err != nil {
		tb.Fatal(err)
	}
	return id, svc
}

// TestNodeCredentialLifecycle follows a node's credential:
//
//  1. An admin's enrollment token enrolls a node; its credential
//     authenticates it, and the token cannot be used again.
//  2. Retiring the node revokes the credential at once and retires the node
//     on the write side.
//  3. Retiring it again is domain.ErrNodeRetired; an unknown node is
//     domain.ErrNodeNotFound.
func TestNodeCredentialLifecycle(t *testing.T) {
	ids, svc := newService(t)
	enrollment := domain.Enrollment{Name: "gpu-box", Capabilities: domain.Capabilities{JobTypes: domain.JobTypes(), Slots: 1}}
	admin := commands.Actor{ID: "admin:test"}

	// 1.
	token, _, err := ids.IssueEnrollmentToken(ctx, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	node, cred, err := ids.EnrollWithToken(ctx, token, enrollment)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ids.AuthenticateNode(ctx, cred); err != nil || got != node {
		t.Fatalf("AuthenticateNode = %s, %v; want %s", got, err, node)
	}
	if _, _, err := ids.EnrollWithToken(ctx, token, enrollment); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("second enrollment with one token: %v, want ErrInvalidToken", err)
	}

	// 2.
	if _, err := ids.RetireNode(ctx, admin, node, "decommissioned"); err != nil {
		t.Fatal(err)
	}
	if _, err := ids.AuthenticateNode(ctx, cred); !errors.Is(err, identity.ErrInvalidToken) {
		t.Errorf("credential of a retired node: %v, want ErrInvalidToken", err)
	}
	if n, err := svc.Node(ctx, node); err != nil || !n.Retired() {
		t.Errorf("node retired = %v, %v; want true", n.Retired(), err)
	}

	// 3.
	if _, err := ids.RetireNode(ctx, admin, node, "again"); !errors.Is(err, domain.ErrNodeRetired) {
		t.Errorf("retire twice: %v, want ErrNodeRetired", err)
	}
	if _, err := ids.RetireNode(ctx, admin, "node-unknown", "gone"); !errors.Is(err, domain.ErrNodeNotFound) {
		t.Errorf("retire unknown: %v, want ErrNodeNotFound", err)
	}
}

// TestLogin checks that a registered user logs in with their password
// (email compared case-insensitively) and nobody logs in with a wrong one.
func TestLogin(t *testing.T) {
	ids, _ := newService(t)
	u, err := ids.Register(ctx, "Ada@example.com", "Ada", "correct horse", identity.RoleCreator)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ids.Authenticate(ctx, "ada@example.com", "correct horse"); err != nil || got.ID != u.ID {
		t.Errorf("Authenticate = %+v, %v; want %s", got, err, u.ID)
	}
	if _, err := ids.Authenticate(ctx, "ada@example.com", "wrong horse"); !errors.Is(err, identity.ErrBadCredentials) {
		t.Errorf("wrong password: %v, want ErrBadCredentials", err)
	}
	if _, err := ids.Register(ctx, "ADA@example.com", "Ada 2", "another horse", identity.RoleCreator); !errors.Is(err, identity.ErrEmailTaken) {
		t.Errorf("same email again: %v, want ErrEmailTaken", err)
	}
}

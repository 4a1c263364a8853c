package http

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/identity"
)

var tokenUser = identity.User{ID: "user-1", Role: identity.RoleCreator}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t *testing.T, tk *Tokens) string {
	t.Helper()
	tok, err := tk.Issue(tokenUser)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustRefuse(t *testing.T, tk *Tokens, tok, why string) {
	t.Helper()
	if _, err := tk.Check(tok); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("%s: Check = %v, want unauthorized", why, err)
	}
}

// TestTokensShareOneKeyFile: two processes that load the same key file
// accept each other's tokens, and a token names its key.
func TestTokensShareOneKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwt.pem")
	k1, err := LoadOrCreateKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(path, false)
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewTokens(k1, nil), NewTokens(k2, nil)
	tok := issue(t, a)
	c, err := b.Check(tok)
	if err != nil || c.Subject != string(tokenUser.ID) {
		t.Fatalf("the other process: %+v, %v", c, err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &claims{})
	if err != nil || parsed.Header["kid"] != KeyID(k1.Public().(ed25519.PublicKey)) {
		t.Fatalf("kid header %v (%v), want the key's id", parsed.Header["kid"], err)
	}
}

// TestTokensKeyRotation: 1. a process with a new signing key refuses the
// old key's tokens; 2. told to accept the old public key, it takes them
// until they expire; 3. its own tokens name the new key and an old process
// refuses them; 4. a token that names an accepted key but is signed by
// another key is refused.
func TestTokensKeyRotation(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	oldKey, rotatedKey := newKey(t), newKey(t)
	old, rotated := NewTokens(oldKey, clock), NewTokens(rotatedKey, clock)
	oldTok := issue(t, old)
	mustRefuse(t, rotated, oldTok, "step 1")

	rotated.Accept(oldKey.Public().(ed25519.PublicKey))
	if _, err := rotated.Check(oldTok); err != nil {
		t.Fatalf("step 2: an old token after rotation: %v", err)
	}
	later := NewTokens(rotatedKey, func() time.Time { return now.Add(AccessTokenTTL + time.Minute) })
	later.Accept(oldKey.Public().(ed25519.PublicKey))
	mustRefuse(t, later, oldTok, "step 2: an old token past its expiry")

	newTok := issue(t, rotated)
	if _, err := rotated.Check(newTok); err != nil {
		t.Fatalf("step 3: %v", err)
	}
	mustRefuse(t, old, newTok, "step 3: a process that does not know the new key")

	forger := newKey(t)
	c := claims{Role: identity.RoleAdmin, RegisteredClaims: jwt.RegisteredClaims{Issuer: tokenIssuer, Subject: "user-1",
		Audience: jwt.ClaimStrings{tokenAudience}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}}
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	forged.Header["kid"] = KeyID(oldKey.Public().(ed25519.PublicKey))
	s, err := forged.SignedString(forger)
	if err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, rotated, s, "step 4: a forged token naming an accepted key")
	forged.Header["kid"] = "not-a-key"
	s, _ = forged.SignedString(forger)
	mustRefuse(t, rotated, s, "step 4: an unknown key id")
}

// TestTokensWithoutKeyID: a token issued before key ids (no "kid") is
// checked with the signing key only, never with a previous key.
func TestTokensWithoutKeyID(t *testing.T) {
	now := time.Now()
	signing, previous := newKey(t), newKey(t)
	tk := NewTokens(signing, func() time.Time { return now })
	tk.Accept(previous.Public().(ed25519.PublicKey))
	c := claims{Role: identity.RoleCreator, RegisteredClaims: jwt.RegisteredClaims{Issuer: tokenIssuer, Subject: "user-1",
		Audience: jwt.ClaimStrings{tokenAudience}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}}
	legacy, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(signing)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Check(legacy); err != nil {
		t.Fatalf("a legacy token of the signing key: %v", err)
	}
	byPrevious, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(previous)
	mustRefuse(t, tk, byPrevious, "a token without kid signed by a previous key")
}

// TestLoadPublicKeys reads public and private PEM files and refuses
// anything else with the file named.
func TestLoadPublicKeys(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	pubDER, _ := x509.MarshalPKIXPublicKey(k.Public())
	privDER, _ := x509.MarshalPKCS8PrivateKey(k)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubs, err := LoadPublicKeys([]string{write("pub.pem", "PUBLIC KEY", pubDER), write("priv.pem", "PRIVATE KEY", privDER)})
	if err != nil || len(pubs) != 2 || !pubs[0].Equal(k.Public()) || !pubs[1].Equal(k.Public()) {
		t.Fatalf("LoadPublicKeys = %v, %v", pubs, err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("hello"), 0o600)
	for _, tc := range []struct{ path, says string }{
		{write("rsa.pem", "PUBLIC KEY", rsaDER), "not an Ed25519 key"},
		{write("cert.pem", "CERTIFICATE", pubDER), `PEM block "CERTIFICATE"`},
		{garbage, "not PEM"},
		{filepath.Join(dir, "missing.pem"), "no such file"},
	} {
		if _, err := LoadPublicKeys([]string{tc.path}); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("LoadPublicKeys(%s) = %v, want %q", filepath.Base(tc.path), err, tc.says)
		}
	}
}

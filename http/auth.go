package http

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/identity"
)

// Access tokens: EdDSA-signed JWTs, algorithm pinned, issuer, audience and
// expiry checked.
const (
	// AccessTokenTTL is how long an access token lasts unless the
	// operator sets another lifetime (Tokens.SetTTL).
	AccessTokenTTL = 15 * time.Minute
	// AccessTokenTTLMin and AccessTokenTTLMax bound a configured lifetime.
	AccessTokenTTLMin = time.Second
	AccessTokenTTLMax = 24 * time.Hour
	tokenIssuer       = "rendertrust"
	tokenAudience     = "rendertrust-api"
	tokenAlg          = "EdDSA"
)

var errUnauthorized = &domain.Error{Code: domain.CodeUnauthorized, Message: "missing or invalid access token"}
var errForbidden = &domain.Error{Code: domain.CodeForbidden, Message: "admin role required"}

// Tokens signs and checks access tokens. Verified tokens are remembered
// until they expire, so a client's requests pay for one signature check per
// token, not one per request.
type Tokens struct {
	key      ed25519.PrivateKey
	keyID    string
	accepted map[string]ed25519.PublicKey // by key id: the signing key's and previous keys still accepted
	now      func() time.Time
	ttl      time.Duration
	mu       sync.Mutex
	verified map[string]claims
}

// verifiedTokensMax bounds the remembered tokens; past it the memory starts over.
const verifiedTokensMax = 50_000

// claims are an access token's claims.
type claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// NewTokens returns a token signer with key.
func NewTokens(key ed25519.PrivateKey, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	pub := key.Public().(ed25519.PublicKey)
	id := KeyID(pub)
	return &Tokens{key: key, keyID: id, accepted: map[string]ed25519.PublicKey{id: pub},
		now: now, ttl: AccessTokenTTL, verified: map[string]claims{}}
}

// Accept makes tokens signed by the previous signing keys pub valid until
// they expire: the rotation of the signing key across processes (see
// LoadPublicKeys). Call it before serving.
func (t *Tokens) Accept(pubs ...ed25519.PublicKey) {
	for _, p := range pubs {
		t.accepted[KeyID(p)] = p
	}
}

// KeyID names a verification key in a token's "kid" header: the first
// kidBytes of the SHA-256 of the public key, base64url. Every process
// derives the same id from the same key, so none has to be configured.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:kidBytes])
}

// kidBytes is the length of a key id before encoding.
const kidBytes = 12

// SetTTL sets how long the access tokens issued from now on last. It
// returns an error for a lifetime outside [AccessTokenTTLMin,
// AccessTokenTTLMax]. Call it before serving.
func (t *Tokens) SetTTL(d time.Duration) error {
	if d < AccessTokenTTLMin || d > AccessTokenTTLMax {
		return fmt.Errorf("access token lifetime %s: want %s to %s", d, AccessTokenTTLMin, AccessTokenTTLMax)
	}
	t.ttl = d
	return nil
}

// TTL returns how long an issued access token lasts.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// LoadOrCreateKey reads an Ed25519 private key (PKCS #8 PEM) from path,
// creating one with owner-only permissions when create is true and the file
// does not exist.
func LoadOrCreateKey(path string, create bool) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		return key, os.WriteFile(path, pemBytes, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("read JWT key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("JWT key %s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("JWT key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("JWT key %s: not an Ed25519 key", path)
	}
	return key, nil
}

// LoadPublicKeys reads the verification keys of previous signing keys, one
// PEM file each: a public key (PKIX, "PUBLIC KEY") or the old private key
// itself (PKCS #8, "PRIVATE KEY", whose public half is used).
func LoadPublicKeys(paths []string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read previous JWT key: %w", err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("previous JWT key %s: not PEM", path)
		}
		var k any
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "PRIVATE KEY":
			var priv any
			if priv, err = x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
				k = publicHalf(priv)
			}
		default:
			err = fmt.Errorf("PEM block %q, want PUBLIC KEY or PRIVATE KEY", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("previous JWT key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("previous JWT key %s: not an Ed25519 key", path)
		}
		out = append(out, pub)
	}
	return out, nil
}

func publicHalf(priv any) any {
	if k, ok := priv.(ed25519.PrivateKey); ok {
		return k.Public()
	}
	return nil
}

// Issue returns a signed access token for u.
func (t *Tokens) Issue(u identity.User) (string, error) {
	now := t.now()
	c := claims{Role: u.Role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: string(u.ID), Audience: jwt.ClaimStrings{tokenAudience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)), ID: uuid.Must(uuid.NewV7()).String(),
	}}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = t.keyID
	return tok.SignedString(t.key)
}

// Check parses and verifies an access token and returns its claims, or
// errUnauthorized for anything wrong with it.
func (t *Tokens) Check(token string) (claims, error) {
	t.mu.Lock()
	c, ok := t.verified[token]
	t.mu.Unlock()
	if ok && t.now().Before(c.ExpiresAt.Time) {
		return c, nil
	}
	c, err := t.verify(token)
	if err != nil {
		return c, err
	}
	t.mu.Lock()
	if len(t.verified) >= verifiedTokensMax {
		clear(t.verified)
	}
	t.verified[token] = c
	t.mu.Unlock()
	return c, nil
}

// verify checks a token's signature, algorithm, issuer, audience and times.
func (t *Tokens) verify(token string) (claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, t.verificationKey,
		jwt.WithValidMethods([]string{tokenAlg}), jwt.WithIssuer(tokenIssuer), jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(t.now), jwt.WithLeeway(5*time.Second))
	if err != nil || c.Subject == "" {
		return claims{}, errUnauthorized
	}
	return c, nil
}

// verificationKey is the key a token names in its "kid" header among the
// accepted ones; a token without one (issued before key ids) is checked
// with the signing key.
func (t *Tokens) verificationKey(tok *jwt.Token) (any, error) {
	kid, present := tok.Header["kid"]
	if !present {
		return t.key.Public(), nil
	}
	id, _ := kid.(string)
	if pub, ok := t.accepted[id]; ok {
		return pub, nil
	}
	return nil, errUnauthorized
}

const (
	ctxUser = "rt.user"
	ctxRole = "rt.role"
	ctxNode = "rt.node"
)

func bearer(c echo.Context) string {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// requireUser admits requests with a valid access token (of an admin when
// adminOnly).
func (s *Server) requireUser(adminOnly bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cl, err := s.Tokens.Check(bearer(c))
			if err != nil {
				return err
			}
			if adminOnly && cl.Role != identity.RoleAdmin {
				return errForbidden
			}
			c.Set(ctxUser, domain.UserID(cl.Subject))
			c.Set(ctxRole, cl.Role)
			return next(c)
		}
	}
}

// requireNode admits requests with a node credential.
func (s *Server) requireNode(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := s.Nodes.AuthenticateNode(c.Request().Context(), bearer(c))
		if err != nil {
			return err
		}
		c.Set(ctxNode, id)
		return next(c)
	}
}

func userOf(c echo.Context) domain.UserID { v, _ := c.Get(ctxUser).(domain.UserID); return v }
func isAdmin(c echo.Context) bool         { return c.Get(ctxRole) == identity.RoleAdmin }
func nodeOf(c echo.Context) domain.NodeID { v, _ := c.Get(ctxNode).(domain.NodeID); return v }

// actor describes the request's caller for event metadata.
func actor(c echo.Context) commands.Actor {
	a := commands.Actor{CorrelationID: requestID(c), IdempotencyKey: c.Request().Header.Get("Idempotency-Key")}
	switch {
	case nodeOf(c) != "":
		a.ID = "node:" + string(nodeOf(c))
	case isAdmin(c):
		a.ID = "admin:" + string(userOf(c))
	case userOf(c) != "":
		a.ID = "user:" + string(userOf(c))
	}
	return a
}

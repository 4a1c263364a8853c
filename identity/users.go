package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/rendertrust/rendertrust/domain"
)

// Identity limits.
const (
	// PasswordBytesMin is the shortest password accepted (the guide's "minimum 8 characters").
	PasswordBytesMin = 8
	// passwordBytesMax is bcrypt's input limit.
	passwordBytesMax = 72
	emailBytesMax    = 254
	userNameBytesMax = 100
)

// Roles a user can have.
const (
	RoleCreator = "creator"
	RoleAdmin   = "admin"
)

// ErrEmailTaken is returned when registering an email already in use
// (compared case-insensitively).
var ErrEmailTaken = &domain.Error{Code: domain.CodeConflict, Message: "email already registered"}

// ErrBadCredentials is returned for an unknown email or a wrong password,
// without saying which.
var ErrBadCredentials = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid email or password"}

// ErrUserNotFound is returned for a user id or email nobody has.
var ErrUserNotFound = &domain.Error{Code: domain.CodeNotFound, Message: "user not found"}

// User is an identity: the only place personal data lives.
type User struct {
	ID    domain.UserID `json:"id"`
	Email string        `json:"email"`
	Name  string        `json:"name"`
	Role  string        `json:"role"`
}

// Register creates a user with a bcrypt-hashed password. It returns a
// domain.CodeInvalid error naming the bad field, or ErrEmailTaken.
func (s *Service) Register(ctx context.Context, email, name, password, role string) (User, error) {
	u, err := validIdentity(email, name, password, role)
	if err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost())
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	u.ID = domain.UserID(uuid.Must(uuid.NewV7()).String())
	_, err = s.db.Exec(ctx, `INSERT INTO users (id, email, email_key, name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (email_key) DO NOTHING`, string(u.ID), u.Email, emailKey(u.Email), u.Name, string(hash), u.Role, s.now().UnixMicro())
	if err != nil {
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	got, _, err := s.userBy(ctx, "email_key", emailKey(u.Email))
	if err != nil {
		return User{}, err
	}
	if got.ID != u.ID {
		return User{}, ErrEmailTaken
	}
	return u, nil
}

func validIdentity(email, name, password, role string) (User, error) {
	email, name = strings.TrimSpace(email), strings.TrimSpace(name)
	addr, err := mail.ParseAddress(email)
	switch {
	case err != nil || addr.Address != email || len(email) > emailBytesMax || strings.ContainsFunc(email, unicode.IsControl):
		return User{}, domain.Errorf(domain.CodeInvalid, "email: not a valid address")
	case name == "" || len(name) > userNameBytesMax || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return User{}, domain.Errorf(domain.CodeInvalid, "name: 1 to %d bytes of printable text", userNameBytesMax)
	case utf8.RuneCountInString(password) < PasswordBytesMin || len(password) > passwordBytesMax:
		return User{}, domain.Errorf(domain.CodeInvalid, "password: %d to %d characters", PasswordBytesMin, passwordBytesMax)
	case role != RoleCreator && role != RoleAdmin:
		return User{}, domain.Errorf(domain.CodeInvalid, "role: %q", role)
	}
	return User{Email: email, Name: name, Role: role}, nil
}

func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Authenticate returns the user with this email and password, or
// ErrBadCredentials. It spends a bcrypt comparison even for an unknown email
// so timing does not reveal which emails exist.
func (s *Service) Authenticate(ctx context.Context, email, password string) (User, error) {
	u, hash, err := s.userBy(ctx, "email_key", emailKey(email))
	if errors.Is(err, ErrUserNotFound) {
		bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

// dummyHash is what an unknown email's password is compared with: a hash at
// the cost of real ones, so the answer takes as long as for a real account.
func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a password"), s.bcryptCost())
	})
	return s.dummy
}

// User returns the user with this id, or ErrUserNotFound.
func (s *Service) User(ctx context.Context, id domain.UserID) (User, error) {
	u, _, err := s.userBy(ctx, "id", string(id))
	return u, err
}

// userBy looks a user up by a unique column ("id" or "email_key").
func (s *Service) userBy(ctx context.Context, column, value string) (User, string, error) {
	var u User
	var hash string
	err := s.db.QueryRow(ctx, `SELECT id, email, name, role, password_hash FROM users WHERE `+column+` = ?`, value).
		Scan(&u.ID, &u.Email, &u.Name, &u.Role, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", ErrUserNotFound
	}
	if err != nil {
		return User{}, "", fmt.Errorf("read user: %w", err)
	}
	return u, hash, nil
}

// Users lists users in id order after the given id, at most limit.
func (s *Service) Users(ctx context.Context, after domain.UserID, limit int) ([]User, error) {
	rows, err := s.db.Query(ctx, `SELECT id, email, name, role FROM users WHERE id > ? ORDER BY id LIMIT ?`, string(after), limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.ID, &u.Email, &u.Name, &u.Role); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *Service) bcryptCost() int {
	if s.passwordCost > 0 {
		return s.passwordCost
	}
	return bcrypt.DefaultCost
}

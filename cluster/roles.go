// Package cluster is what the processes of one installation agree on: which
// roles a process runs, and — on PostgreSQL — which process leads each
// worker role. Any number of processes serve the API; every other role is
// held by one process at a time through a PostgreSQL session advisory lock,
// fenced by an epoch that a deposed leader's effects are checked against.
package cluster

import (
	"slices"
	"strings"

	"github.com/rendertrust/rendertrust/domain"
)

// Role is a part of the server a process can run.
type Role string

// The roles. RoleAPI may run in any number of processes; each of the others
// runs in exactly one process at a time (a Leader).
const (
	RoleAPI         Role = "api"
	RoleProjections Role = "projections"
	RoleReactor     Role = "reactor"
	RoleDispatcher  Role = "dispatcher"
	RoleAnchor      Role = "anchor"
)

// AllRoles is every role in a fixed order: the default of a process, and the
// only set an embedded (SQLite) installation can run.
var AllRoles = Roles{RoleAPI, RoleProjections, RoleReactor, RoleDispatcher, RoleAnchor}

// Roles is the set of roles one process runs, in AllRoles' order.
type Roles []Role

// ParseRoles reads a comma-separated list such as "api,projections". An
// empty list, an unknown role and a repeated role are CodeInvalid errors
// that name the offending entry.
func ParseRoles(s string) (Roles, error) {
	if strings.TrimSpace(s) == "" {
		return nil, domain.Errorf(domain.CodeInvalid, "--roles is empty: name one or more of %s", AllRoles)
	}
	var out Roles
	for _, part := range strings.Split(s, ",") {
		r := Role(strings.TrimSpace(part))
		switch {
		case r == "":
			return nil, domain.Errorf(domain.CodeInvalid, "--roles %q has an empty entry", s)
		case !slices.Contains(AllRoles, r):
			return nil, domain.Errorf(domain.CodeInvalid, "--roles: unknown role %q (roles: %s)", r, AllRoles)
		case slices.Contains(out, r):
			return nil, domain.Errorf(domain.CodeInvalid, "--roles: %q is named twice", r)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Role) int { return slices.Index(AllRoles, a) - slices.Index(AllRoles, b) })
	return out, nil
}

// Has reports whether r is among the roles.
func (rs Roles) Has(r Role) bool { return slices.Contains(rs, r) }

// All reports whether the roles are every role (one process runs it all).
func (rs Roles) All() bool { return len(rs) == len(AllRoles) }

// Leaders are the roles that need leadership: all but RoleAPI.
func (rs Roles) Leaders() Roles {
	return slices.DeleteFunc(slices.Clone(rs), func(r Role) bool { return r == RoleAPI })
}

// String is the comma-separated list ParseRoles reads.
func (rs Roles) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

// ErrRolesNeedPostgres: a process that runs fewer than all roles needs the
// others to run elsewhere, on the same PostgreSQL database; the embedded
// SQLite store serves one process, which runs every role.
var ErrRolesNeedPostgres = &domain.Error{Code: domain.CodeInvalid,
	Message: "--roles other than all needs PostgreSQL (--database-url): the embedded SQLite store serves one process, which runs every role"}

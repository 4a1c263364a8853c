package cluster_test

import (
	"strings"
	"testing"

	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/domain"
)

func TestParseRoles(t *testing.T) {
	ok := []struct{ in, want string }{
		{"api", "api"},
		{"anchor, api", "api,anchor"},
		{"api,projections,reactor,dispatcher,anchor", "api,projections,reactor,dispatcher,anchor"},
		{"dispatcher,reactor", "reactor,dispatcher"},
	}
	for _, tc := range ok {
		got, err := cluster.ParseRoles(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseRoles(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, says string }{
		{"", "empty"},
		{"  ", "empty"},
		{"api,,anchor", "empty entry"},
		{"api,web", `unknown role "web"`},
		{"API", `unknown role "API"`},
		{"api,anchor,api", `"api" is named twice`},
	}
	for _, tc := range bad {
		_, err := cluster.ParseRoles(tc.in)
		if domain.ErrorCode(err) != domain.CodeInvalid || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseRoles(%q) error %v; want invalid, saying %q", tc.in, err, tc.says)
		}
	}
}

func TestRolesLeaders(t *testing.T) {
	if got := cluster.AllRoles.Leaders().String(); got != "projections,reactor,dispatcher,anchor" {
		t.Fatalf("leader roles %q", got)
	}
	if !cluster.AllRoles.All() || (cluster.Roles{cluster.RoleAPI}).All() {
		t.Fatal("All() wrong")
	}
	if len(cluster.AllRoles) != 5 || cluster.AllRoles.Leaders().Has(cluster.RoleAPI) {
		t.Fatal("api needs no leadership")
	}
}

package operator

import (
	"fmt"
	"testing"
)

// TestLoadtestUsesEveryCreator: 64 clients acting for 1,000 creators use
// every creator within their first 16 requests each (a client once acted
// for one creator forever, so only 64 of the 1,000 ever submitted), and one
// hot creator is every request's.
func TestLoadtestUsesEveryCreator(t *testing.T) {
	for _, tc := range []struct{ clients, users, requests int }{{64, 1000, 16}, {64, 1, 3}, {8, 8, 1}} {
		e := &loadtestEnv{clients: tc.clients}
		for u := range tc.users {
			e.tokens = append(e.tokens, fmt.Sprint("token-", u))
		}
		used := map[string]bool{}
		for c := range tc.clients {
			for n := range tc.requests {
				used[e.tokenOf(c, n)] = true
			}
		}
		if len(used) != tc.users {
			t.Errorf("%d clients × %d requests used %d of %d creators", tc.clients, tc.requests, len(used), tc.users)
		}
	}
}

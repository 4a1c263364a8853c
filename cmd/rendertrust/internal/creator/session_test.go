package creator

import "testing"

func TestUsageBar(t *testing.T) {
	for _, tc := range []struct {
		name       string
		n, most    int64
		wantLength int // in runes
	}{
		{"None", 0, 10, 0},
		{"Busiest", 10, 10, usageBarWidthMax},
		{"Half", 5, 10, usageBarWidthMax / 2},
		{"SliverForAnyUse", 1, 1000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len([]rune(usageBar(tc.n, tc.most))); got != tc.wantLength {
				t.Fatalf("usageBar(%d, %d) is %d runes, want %d", tc.n, tc.most, got, tc.wantLength)
			}
		})
	}
}

func TestResolveServer(t *testing.T) {
	for _, tc := range []struct {
		name, flag, env, saved, want string
	}{
		{"Flag", "http://flag:1/", "http://env:1", "http://saved:1", "http://flag:1"},
		{"Env", "", "http://env:1", "http://saved:1", "http://env:1"},
		{"Saved", "", "", "http://saved:1", "http://saved:1"},
		{"Default", "", "", "", ServerDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(ServerEnv, tc.env)
			if got := resolveServer(tc.flag, savedSession{Server: tc.saved}); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

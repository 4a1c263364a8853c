package http

import (
	"net"
	"net/http/httptest"
	"testing"
)

// TestClientAddress: a client's own X-Forwarded-For is ignored: the peer is
// the client unless it is a configured trusted proxy.
func TestClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name, remote, forwarded, want string
		config                        Config
	}{
		{"NoProxies", "203.0.113.7:4000", "198.51.100.1", "203.0.113.7", Config{}},
		{"NoProxiesLoopback", "127.0.0.1:4000", "198.51.100.1", "127.0.0.1", Config{}},
		{"TrustedProxy", "10.0.0.2:4000", "198.51.100.1, 10.0.0.3", "198.51.100.1", Config{TrustedProxies: cidrs(t, "10.0.0.0/24")}},
		{"UntrustedPeer", "10.0.1.2:4000", "198.51.100.1", "10.0.1.2", Config{TrustedProxies: cidrs(t, "10.0.0.0/24")}},
		{"SpoofedBehindProxy", "10.0.0.2:4000", "203.0.113.9, 198.51.100.1", "198.51.100.1", Config{TrustedProxies: cidrs(t, "10.0.0.0/24")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.config)
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.remote
			req.Header.Set("X-Forwarded-For", tc.forwarded)
			if got := s.echo.NewContext(req, httptest.NewRecorder()).RealIP(); got != tc.want {
				t.Fatalf("client address %q, want %q", got, tc.want)
			}
		})
	}
}

func cidrs(t *testing.T, list ...string) []*net.IPNet {
	var out []*net.IPNet
	for _, c := range list {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

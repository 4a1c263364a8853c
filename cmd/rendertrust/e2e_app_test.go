package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeShowsTheApp: `serve` answers / with the Creator app, while the
// API, its JSON 404s, /metrics and /healthz stay as they were; the chain
// endpoint names the dev chain, whose JSON-RPC the app may read from the
// browser (CORS).
func TestServeShowsTheApp(t *testing.T) {
	s := startServer(t, nil)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(s.base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, path := range []string{"/", "/jobs", "/credits"} {
		res, body := get(path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `<div id="root">`) {
			t.Errorf("GET %s = %d %s, not the app: %.120s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	if res, body := get("/api/v1/no-such-thing"); res.StatusCode != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("unknown API path = %d %s, want the JSON 404", res.StatusCode, body)
	}
	if res, body := get("/metrics"); res.StatusCode != 200 || !strings.Contains(body, "# HELP") {
		t.Errorf("/metrics = %d", res.StatusCode)
	}
	if res, _ := get("/healthz"); res.StatusCode != 200 {
		t.Errorf("/healthz = %d", res.StatusCode)
	}

	var chain struct {
		ChainID  uint64 `json:"chain_id"`
		Contract string `json:"contract"`
		RPCURL   string `json:"rpc_url"`
	}
	if st := s.call(t, "GET", "/api/v1/ledger/chain", "", nil, &chain); st != 200 || chain.ChainID == 0 || !strings.HasPrefix(chain.Contract, "0x") || chain.RPCURL == "" {
		t.Fatalf("GET /api/v1/ledger/chain = %d %+v", st, chain)
	}
	req, _ := http.NewRequest("POST", chain.RPCURL, bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.base)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got == "" {
		t.Errorf("the dev chain's JSON-RPC allows no browser origin: the app could not read roots")
	}
}

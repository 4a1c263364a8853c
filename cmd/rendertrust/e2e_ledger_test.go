package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rtproof "github.com/rendertrust/rendertrust/anchor/proof"
)

// TestLedgerProofs: on the embedded dev chain, 1. a purchase shows in the
// transactions with its entry id; 2. once anchored, its proof has the
// public format and verifies through the API; 3. the
// offline verifier checks the saved proof against the chain's JSON-RPC
// alone, and refuses it when trusting another contract or chain; 4. a proof with one byte of the entry changed fails; 5. another
// user cannot see the entry (404).
func TestLedgerProofs(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AnchorInterval = 200 * time.Millisecond })
	tok := s.register(t, "auditor@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_500"}, nil)
	var txs struct {
		Transactions []struct {
			EntryID  string `json:"entry_id"`
			Type     string `json:"type"`
			Anchored bool   `json:"anchored"`
		} `json:"transactions"`
	}
	s.call(t, "GET", "/api/v1/credits/transactions", tok, nil, &txs)
	if len(txs.Transactions) != 1 || txs.Transactions[0].Type != "purchase" {
		t.Fatalf("transactions %+v, want one purchase", txs)
	}
	entry := txs.Transactions[0].EntryID
	var raw json.RawMessage
	var proof struct {
		Alg       string   `json:"alg"`
		EntryID   string   `json:"entry_id"`
		Entry     string   `json:"entry"`
		TreeSize  uint64   `json:"tree_size"`
		AuditPath []string `json:"audit_path"`
		Root      string   `json:"root"`
		Anchor    struct {
			ChainID  uint64 `json:"chain_id"`
			Contract string `json:"contract"`
			TxHash   string `json:"tx_hash"`
		} `json:"anchor"`
	}
	eventually(t, "step 2: anchored proof", func() string {
		raw = nil
		if st := s.call(t, "GET", "/api/v1/ledger/"+entry+"/proof", tok, nil, &raw); st != 200 {
			return "proof status " + string(raw)
		}
		return ""
	})
	json.Unmarshal(raw, &proof)
	entryBytes, _ := base64.StdEncoding.DecodeString(proof.Entry)
	if proof.Alg != "rfc9162-sha256" || proof.EntryID != entry || !bytes.Contains(entryBytes, []byte(`"credits.purchased"`)) ||
		proof.TreeSize == 0 || proof.Root == "" || proof.Anchor.TxHash == "" || proof.Anchor.ChainID == 0 {
		t.Fatalf("step 2: proof %s", raw)
	}
	var v struct {
		Verified bool            `json:"verified"`
		Checks   map[string]bool `json:"checks"`
	}
	if st := s.call(t, "GET", "/api/v1/ledger/"+entry+"/verify", tok, nil, &v); st != 200 || !v.Verified || len(v.Checks) < 3 {
		t.Fatalf("step 2: verify %d %+v", st, v)
	}
	rpc := s.m.Anchor.Dev.URL()
	path := filepath.Join(t.TempDir(), "proof.json")
	os.WriteFile(path, raw, 0o600)
	var out bytes.Buffer
	trust := s.m.Anchor.Dev.Trust()
	if err := runVerify(context.Background(), nil, &out, path, rpc, trust, false); err != nil {
		t.Fatalf("step 3: offline verify: %v\n%s", err, out.String())
	}
	otherContract, otherChain := trust, trust
	otherContract.Contract[19] ^= 1
	otherChain.ChainID++
	for name, other := range map[string]rtproof.Trust{"another contract": otherContract, "another chain": otherChain} {
		out.Reset()
		if err := runVerify(context.Background(), nil, &out, path, rpc, other, false); !errors.Is(err, errNotVerified) {
			t.Fatalf("step 3: verify trusting %s: %v, want errNotVerified\n%s", name, err, out.String())
		}
	}
	tampered := strings.Replace(string(raw), proof.Entry, base64.StdEncoding.EncodeToString(bytes.Replace(entryBytes, []byte("500"), []byte("900"), 1)), 1)
	os.WriteFile(path, []byte(tampered), 0o600)
	out.Reset()
	if err := runVerify(context.Background(), nil, &out, path, rpc, trust, false); err == nil {
		t.Fatalf("step 4: a tampered entry verified:\n%s", out.String())
	}
	other := s.register(t, "nosy@example.com").AccessToken
	if st := s.call(t, "GET", "/api/v1/ledger/"+entry+"/proof", other, nil, nil); st != 404 {
		t.Fatalf("step 5: another user's entry: %d, want 404", st)
	}
}

// TestLedgerNotAnchoredYet: before its anchor, an entry's proof is a 409
// "not_anchored" naming the expected wait.
func TestLedgerNotAnchoredYet(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AnchorInterval = time.Hour; c.AnchorEvery = 1_000_000 })
	tok := s.register(t, "early@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	var txs struct {
		Transactions []struct {
			EntryID  string `json:"entry_id"`
			Anchored bool   `json:"anchored"`
		} `json:"transactions"`
	}
	s.call(t, "GET", "/api/v1/credits/transactions", tok, nil, &txs)
	if len(txs.Transactions) != 1 || txs.Transactions[0].Anchored {
		t.Fatalf("transactions %+v, want one entry not anchored yet", txs)
	}
	var e struct {
		Error struct {
			Code              string `json:"code"`
			RetryAfterSeconds int    `json:"retry_after_seconds"`
		} `json:"error"`
	}
	eventually(t, "indexed in the audit log", func() string {
		if st := s.call(t, "GET", "/api/v1/ledger/"+txs.Transactions[0].EntryID+"/proof", tok, nil, &e); st != 409 || e.Error.Code != "not_anchored" || e.Error.RetryAfterSeconds <= 0 {
			return "proof answered " + e.Error.Code
		}
		return ""
	})
}

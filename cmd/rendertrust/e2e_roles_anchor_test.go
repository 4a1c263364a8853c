package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// anchorWaitMax bounds how long an anchor may take to cover the log on
// geth --dev (a block per transaction) on a busy machine.
const anchorWaitMax = 60 * time.Second

// TestRolesAnchorFailoverOnGeth: the anchor role fails over on a real chain
// (`geth --dev`), which every worker process reaches with the one writer
// key (`--dev` alone gives each process its own embedded chain, so the
// other roles tests keep the anchor role with their first worker):
//
//  1. a contract is deployed on geth with `rendertrust admin deploy-anchor`;
//     a worker leads every worker role, a standby with the same roles and
//     flags waits, an api-only process serves a creator;
//  2. the creator's purchase is anchored;
//  3. the worker is SIGKILLed while its anchor transaction is in flight
//     (saved, sent, not yet recorded); the standby leads every worker role
//     within rolesTakeoverMax;
//  4. new events are anchored by the standby; the log records each tree
//     size once, in increasing order, and `rendertrust check --rpc` finds
//     every root on the chain.
func TestRolesAnchorFailoverOnGeth(t *testing.T) {
	skipIfShort(t, "starts server processes and needs geth")
	url := e2eGethURL(t)
	dsn, bin := pgtest.NewDatabase(t), crashBinary(t)

	// 1.
	keyFile := e2eFundedKeyFile(t, url)
	contract := e2eDeployAnchor(t, bin, url, keyFile)
	chain := []string{"--roles", rolesWorkers, "--chain-rpc-url", url, "--chain-key-file", keyFile,
		"--anchor-contract", contract, "--anchor-confirmations", "1"}
	worker := startRolesProcess(t, bin, dsn, "worker", chain...)
	worker.awaitLeading(t, rolesWorkers, rolesReadyTimeout)
	standby := startRolesProcess(t, bin, dsn, "standby", chain...)
	api := startRolesProcess(t, bin, dsn, "api", "--roles", "api", "--chain-rpc-url", url, "--anchor-contract", contract)
	if got := standby.leading(); got != "" {
		t.Fatalf("step 1: the standby leads %q while the worker lives", got)
	}

	// 2.
	c := e2eCreatorWithCredits(t, api.base)
	e2eAnchoredHead(t, dsn, "step 2")

	// 3.
	e2eKillWithAnchorInFlight(t, dsn, worker, c)
	killed := time.Now()
	standby.awaitLeading(t, rolesWorkers, rolesTakeoverMax)
	t.Logf("the standby led every worker role %v after the SIGKILL", time.Since(killed).Round(time.Millisecond))

	// 4.
	if _, err := c.Checkout(context.Background(), "credits_100"); err != nil {
		t.Fatalf("step 4: checkout: %v", err)
	}
	sizes := e2eAnchoredHead(t, dsn, "step 4")
	t.Logf("anchored tree sizes, in log order: %v", sizes)
	api.kill()
	standby.kill()
	out, err := exec.Command(bin, "check", "--rpc", url, "--data-dir", standby.dir, "--database-url", dsn, "--log-level", "warn").CombinedOutput()
	if err != nil {
		t.Fatalf("step 4: rendertrust check --rpc: %v\n%s", err, out)
	}
}

// e2eKillWithAnchorInFlight makes new events (a purchase) until the
// worker's anchor of them is in flight — its transaction saved in
// anchor_attempts, which the worker empties once the anchor is recorded —
// and SIGKILLs the worker then.
func e2eKillWithAnchorInFlight(t *testing.T, dsn string, worker *rolesProcess, c *client.Client) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for try := 1; ; try++ {
		if _, err := c.Checkout(context.Background(), "credits_100"); err != nil {
			t.Fatalf("step 3: checkout: %v", err)
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM anchor_attempts`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				worker.kill()
				t.Logf("step 3: SIGKILLed the worker with %d anchor transaction(s) in flight (try %d)", n, try)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		if try == 10 {
			t.Fatal("step 3: never saw an anchor in flight in 10 tries")
		}
	}
}

// e2eAnchoredHead waits until an anchor recorded in the log covers the log
// as it was on entry, checks that the anchor records' tree sizes strictly
// increase (none recorded twice), and returns them.
func e2eAnchoredHead(t *testing.T, dsn, step string) []uint64 {
	t.Helper()
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sizes []uint64
	deadline := time.Now().Add(anchorWaitMax)
	for {
		sizes = e2eAnchorSizes(t, store)
		if len(sizes) > 0 && sizes[len(sizes)-1] >= head {
			return sizes
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no anchor covers position %d after %v; anchored sizes %v", step, head, anchorWaitMax, sizes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eAnchorSizes reads the tree sizes of the anchor records in the log and
// fails if one does not exceed the one before.
func e2eAnchorSizes(t *testing.T, store *postgres.Store) []uint64 {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), domain.AnchorStream, 1, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []uint64
	for _, rec := range recs {
		e, err := domain.DecodeEvent(rec.Type, rec.Data)
		if err != nil {
			t.Fatalf("anchor record at %d: %v", rec.Position, err)
		}
		a, ok := e.(domain.AnchorRecorded)
		if !ok {
			continue
		}
		if n := len(sizes); n > 0 && a.TreeSize <= sizes[n-1] {
			t.Fatalf("anchor record at %d has tree size %d after %d: recorded twice or out of order", rec.Position, a.TreeSize, sizes[n-1])
		}
		sizes = append(sizes, a.TreeSize)
	}
	return sizes
}

// e2eGethURL returns GETH_RPC_URL (`.ci/with-geth` starts geth --dev): a
// failure without it under CI=true, a skip otherwise.
func e2eGethURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("GETH_RPC_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GETH_RPC_URL is not set under CI=true: run the tests through .ci/with-geth")
		}
		t.Skip("GETH_RPC_URL not set (.ci/with-geth starts geth --dev)")
	}
	return u
}

// e2eFundedKeyFile writes a fresh key (hex, mode 0600) whose account geth's
// dev account funded, and waits for the funding to be mined.
func e2eFundedKeyFile(t *testing.T, url string) string {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var accounts []string
	e2eRPC(t, url, "eth_accounts", nil, &accounts)
	if len(accounts) == 0 {
		t.Fatal("eth_accounts is empty; want geth's dev account")
	}
	tenEther := new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18))
	var tx string
	e2eRPC(t, url, "eth_sendTransaction", []any{map[string]string{
		"from": accounts[0], "to": crypto.PubkeyToAddress(key.PublicKey).Hex(), "value": "0x" + tenEther.Text(16),
	}}, &tx)
	deadline := time.Now().Add(anchorWaitMax)
	for {
		var receipt *struct{ Status string }
		err := e2eTryRPC(url, "eth_getTransactionReceipt", []any{tx}, &receipt)
		if err != nil && !strings.Contains(err.Error(), "indexing is in progress") { // a fresh geth answers so at first
			t.Fatal(err)
		}
		if receipt != nil {
			if receipt.Status != "0x1" {
				t.Fatalf("funding transaction %s failed: status %s", tx, receipt.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("funding transaction %s not mined after %v", tx, anchorWaitMax)
		}
		time.Sleep(50 * time.Millisecond)
	}
	path := filepath.Join(t.TempDir(), "anchor.key")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(crypto.FromECDSA(key))), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// e2eDeployAnchor deploys the Anchor contract as an operator would and
// returns its address.
func e2eDeployAnchor(t *testing.T, bin, url, keyFile string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "admin", "deploy-anchor", "--rpc", url, "--key", keyFile)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("deploy-anchor: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// e2eRPC makes one JSON-RPC call to url and decodes its result into out.
func e2eRPC(t *testing.T, url, method string, params []any, out any) {
	t.Helper()
	if err := e2eTryRPC(url, method, params, out); err != nil {
		t.Fatal(err)
	}
}

// e2eTryRPC makes one JSON-RPC call to url and decodes its result into out.
func e2eTryRPC(url, method string, params []any, out any) error {
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage
		Error  *struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s", method, r.Error.Message)
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return fmt.Errorf("%s: result %s: %w", method, r.Result, err)
	}
	return nil
}

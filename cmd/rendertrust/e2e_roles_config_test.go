package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/cluster"
	rthttp "github.com/rendertrust/rendertrust/http"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// rolesSharedArgs are, per database, the flags every process of the
// multi-process tests shares: one signing key and one result directory, as
// the API processes of an installation must (the start-time check refuses
// anything else).
var rolesSharedArgs struct {
	mu   sync.Mutex
	args map[string][]string
}

// rolesShared returns the shared flags of the processes on dsn, creating
// the key and the directory for the first.
func rolesShared(t *testing.T, dsn string) []string {
	t.Helper()
	rolesSharedArgs.mu.Lock()
	defer rolesSharedArgs.mu.Unlock()
	if args, ok := rolesSharedArgs.args[dsn]; ok {
		return args
	}
	if rolesSharedArgs.args == nil {
		rolesSharedArgs.args = map[string][]string{}
	}
	args := []string{"--jwt-key-file", rolesKeyFile(t), "--results-dir", filepath.Join(t.TempDir(), "results")}
	rolesSharedArgs.args[dsn] = args
	return args
}

// rolesRefusalMax bounds how long a refused process takes to exit.
const rolesRefusalMax = 60 * time.Second

// rolesRefused runs `serve` on dsn with args and checks that it exits 1
// without serving, saying says.
func rolesRefused(t *testing.T, bin, dsn, says string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rolesRefusalMax)
	defer cancel()
	all := append([]string{"serve", "--dev", "--no-local-node", "--addr", freeAddr(t), "--data-dir", t.TempDir(),
		"--database-url", dsn, "--log-level", "warn"}, append(rolesShared(t, dsn), args...)...)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Env = crashServerEnv()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), says) {
		t.Fatalf("serve %v: %v, output %q; want exit 1 saying %q", args, err, out, says)
	}
}

// stop ends the process as an operator would (SIGTERM) and waits until it
// is gone: it leaves the registry of API processes on its way out.
func (p *rolesProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(rolesReadyTimeout):
		t.Fatalf("%s still running %v after SIGTERM", p.name, rolesReadyTimeout)
	}
}

// rolesPublicKey writes the public half of the key in keyFile, as an
// operator hands it to the other processes, and returns its path.
func rolesPublicKey(t *testing.T, keyFile string) string {
	t.Helper()
	key, err := rthttp.LoadOrCreateKey(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	path := keyFile + ".pub"
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRolesConfigChecked runs a worker process without the api role and
// two api processes, A and B, with one signing key and one result
// directory, on one PostgreSQL database:
//
//  1. a third api process with another signing key is refused
//     (cluster.ErrTokensRefused's message), and so is one whose key is
//     the same but whose result directory is another
//     (cluster.ErrResultsNotShared's);
//  2. a rolling key rotation: A and then B restart accepting the new key
//     too; A and then B restart signing with the new key and accepting the
//     old one; A and then B restart accepting only the new key. Every
//     restart starts, and after each a creator's tokens from either
//     process are accepted by the other.
func TestRolesConfigChecked(t *testing.T) {
	skipIfShort(t, "starts server processes")
	dsn := pgtest.NewDatabase(t)
	bin := crashBinary(t)
	worker := startRolesProcess(t, bin, dsn, "worker", "--roles", "projections,reactor,dispatcher,anchor")
	worker.awaitLeading(t, rolesWorkers, rolesReadyTimeout)
	api := []*rolesProcess{
		startRolesProcess(t, bin, dsn, "api-a", "--roles", "api"),
		startRolesProcess(t, bin, dsn, "api-b", "--roles", "api"),
	}

	rolesRefused(t, bin, dsn, cluster.ErrTokensRefused.Message, "--roles", "api", "--jwt-key-file", rolesKeyFile(t))
	rolesRefused(t, bin, dsn, cluster.ErrResultsNotShared.Message, "--roles", "api", "--results-dir", t.TempDir())

	e2eCreatorWithCredits(t, api[0].base)
	oldKey := rolesShared(t, dsn)[1]
	newKey := rolesKeyFile(t)
	oldPub, newPub := rolesPublicKey(t, oldKey), rolesPublicKey(t, newKey)
	steps := []struct {
		name string
		args []string
	}{
		{"AcceptNew", []string{"--jwt-key-file", oldKey, "--jwt-verify-key-files", newPub}},
		{"SignNew", []string{"--jwt-key-file", newKey, "--jwt-verify-key-files", oldPub}},
		{"DropOld", []string{"--jwt-key-file", newKey}},
	}
	for _, step := range steps {
		for i, p := range api {
			p.stop(t)
			api[i] = startRolesProcess(t, bin, dsn, p.name, append([]string{"--roles", "api"}, step.args...)...)
			rolesTokensCross(t, api)
		}
		t.Logf("rotation step %s: both api processes restarted", step.name)
	}
}

// rolesTokensCross logs the creator in through each api process and reads
// the balance through the other with that access token alone (no client
// refresh that would hide a refused token).
func rolesTokensCross(t *testing.T, api []*rolesProcess) {
	t.Helper()
	for i, p := range api {
		login, err := client.New(p.base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := login.Login(context.Background(), "creator@example.com", "creator password"); err != nil {
			t.Fatalf("login through %s: %v", p.name, err)
		}
		other := api[1-i]
		req, err := http.NewRequest(http.MethodGet, other.base+"/api/v1/credits/balance", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+login.Tokens().AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a token from %s read through %s: %s, want 200", p.name, other.name, resp.Status)
		}
	}
}

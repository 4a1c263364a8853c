package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/operator"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/audit/check"
	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/projections"
)

// auditRun runs a command as the binary would, against the server's data
// directory (never DATABASE_URL or EVENTSTORE_URL from the environment),
// and returns its standard output.
func auditRun(t *testing.T, s *server, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append(args, "--data-dir", s.m.Config.DataDir, "--database-url=", "--eventstore-url=", "--log-level", "error"))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// auditDeductedJob runs a render job of a new creator to completion and
// waits until it is charged; it returns the creator's token and id and the
// job's id.
func auditDeductedJob(t *testing.T, s *server, email, node string) (string, string, string) {
	t.Helper()
	tok := s.register(t, email)
	s.call(t, "POST", "/api/v1/credits/checkout", tok.AccessToken, map[string]string{"package_id": "credits_100"}, nil)
	var sub submitted
	if st := s.call(t, "POST", "/api/v1/jobs/dispatch", tok.AccessToken, map[string]any{"job_type": "render", "payload_ref": "s3://bucket/scene.blend"}, &sub); st != 201 {
		t.Fatalf("submit: %d", st)
	}
	s.call(t, "GET", "/api/v1/nodes/assignments?wait=1", node, nil, nil)
	if st := s.call(t, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/started", node, nil, nil); st != 200 {
		t.Fatalf("started: %d", st)
	}
	result := []byte("frame " + sub.JobID)
	sum := sha256.Sum256(result)
	req, _ := http.NewRequest("PUT", s.base+"/api/v1/nodes/jobs/"+sub.JobID+"/result", bytes.NewReader(result))
	req.Header.Set("Authorization", "Bearer "+node)
	req.Header.Set("X-Result-SHA256", hex.EncodeToString(sum[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", err, resp)
	}
	resp.Body.Close()
	eventually(t, "charged", func() string {
		var j jobView
		s.call(t, "GET", "/api/v1/jobs/"+sub.JobID, tok.AccessToken, nil, &j)
		if j.Charged != 10 {
			return fmt.Sprintf("job %+v", j)
		}
		return ""
	})
	return tok.AccessToken, string(tok.User.ID), sub.JobID
}

// TestDisputeTooling settles a dispute end to end on the embedded dev
// chain: 1. a creator's render job completes and is charged 10; 2. the
// operator refunds 4, then the rest, on the command line; a further
// refund is refused, and the refunds show as type "refund" in the
// creator's history; 3. concurrent refunds of another job never exceed its
// charge; 4. replay shows the job before and after the refunds, the
// account and the whole log; 5. the job's audit bundle verifies against
// the chain, and fails once a byte changes; 6. check finds nothing, then
// names a read-model row edited behind the runner's back.
func TestDisputeTooling(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AnchorInterval = 200 * time.Millisecond })
	node := s.enrollNode(t, s.admin(t), 4)

	// 1.
	tok, user, job := auditDeductedJob(t, s, "disputed@example.com", node)

	// 2.
	first := auditRefund(t, s, "--job", job, "--amount", "4", "--reason", "late delivery")
	if first.Amount != 4 || first.Deducted != 10 || first.Refunded != 4 || first.EntryID == "" {
		t.Fatalf("step 2: first refund %+v", first)
	}
	rest := auditRefund(t, s, "--job", job, "--reason", "settled in full")
	if rest.Amount != 6 || rest.Refunded != 10 {
		t.Fatalf("step 2: second refund %+v, want the 6 left", rest)
	}
	again := auditRefund(t, s, "--job", job, "--reason", "settled in full", "--refund-id", rest.RefundID, "--amount", "6")
	if !again.Repeated || again.Refunded != 10 {
		t.Fatalf("step 2: a retried refund %+v, want a no-op", again)
	}
	if _, err := auditRun(t, s, newAdminRefundCommand(), "--job", job, "--amount", "1", "--reason", "one more"); !errors.Is(err, domain.ErrRefundExceedsDeduction) {
		t.Fatalf("step 2: refund beyond the charge: %v, want ErrRefundExceedsDeduction", err)
	}
	auditRefundsInHistory(t, s, tok, first.EntryID, rest.EntryID)

	// 3.
	_, _, other := auditDeductedJob(t, s, "racer@example.com", node)
	auditConcurrentRefunds(t, s, other)

	// 4.
	auditReplay(t, s, job, user, first, rest)

	// 5.
	auditBundle(t, s, job)

	// 6.
	auditCheck(t, s)
}

func auditRefund(t *testing.T, s *server, args ...string) refundResult {
	t.Helper()
	out, err := auditRun(t, s, newAdminRefundCommand(), append(args, "--json")...)
	if err != nil {
		t.Fatalf("admin refund %v: %v", args, err)
	}
	var res refundResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("admin refund output %q: %v", out, err)
	}
	return res
}

// auditRefundsInHistory waits for the refunds to show in the creator's
// transaction history, as type refund.
func auditRefundsInHistory(t *testing.T, s *server, tok string, entries ...string) {
	t.Helper()
	eventually(t, "step 2: refunds in the history", func() string {
		var txs struct {
			Transactions []struct {
				EntryID string `json:"entry_id"`
				Type    string `json:"type"`
			} `json:"transactions"`
		}
		s.call(t, "GET", "/api/v1/credits/transactions", tok, nil, &txs)
		found := 0
		for _, tx := range txs.Transactions {
			for _, e := range entries {
				if tx.EntryID == e && tx.Type == "refund" {
					found++
				}
			}
		}
		if found != len(entries) {
			return fmt.Sprintf("history %+v", txs.Transactions)
		}
		return ""
	})
}

// auditConcurrentRefunds races refunds of 3 credits of a job charged 10,
// half of them in the server's process, half as separate command-line
// runs with their own stores: exactly three succeed.
func auditConcurrentRefunds(t *testing.T, s *server, job string) {
	t.Helper()
	const racers = 6
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			reason := fmt.Sprintf("race %d", i)
			if i%2 == 0 {
				_, errs[i] = auditRun(t, s, newAdminRefundCommand(), "--job", job, "--amount", "3", "--reason", reason)
				return
			}
			opts := operator.RefundOptions{Job: job, Amount: 3, Reason: reason}
			errs[i] = runAdminRefund(context.Background(), s.m.Commands, s.m.Store, &bytes.Buffer{}, opts)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, domain.ErrRefundExceedsDeduction):
			t.Errorf("step 3: refund failed with %v", err)
		}
	}
	acc, err := s.m.Commands.Account(context.Background(), auditOwner(t, s, job))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := acc.JobHold(domain.JobID(job))
	if ok != 3 || h.Refunded != 9 || h.Refunded > h.Deducted() {
		t.Fatalf("step 3: %d of %d racing refunds of 3 succeeded, refunded %d of %d; want 3 and 9", ok, racers, h.Refunded, h.Deducted())
	}
}

func auditOwner(t *testing.T, s *server, job string) domain.UserID {
	j, err := s.m.Commands.Job(context.Background(), domain.JobID(job))
	if err != nil {
		t.Fatal(err)
	}
	return j.Owner()
}

// auditReplay replays the job before its refunds and now, the account, and
// the whole log, through the command.
func auditReplay(t *testing.T, s *server, job, user string, first, rest refundResult) {
	t.Helper()
	var before, after replayResult
	auditJSON(t, s, &before, "--job", job, "--until", fmt.Sprint(first.Position-1))
	auditJSON(t, s, &after, "--job", job, "--user", user, "--until", "now")
	if before.Job == nil || before.Job.Status != domain.StatusCompleted || before.Job.Deducted != 10 || before.Job.Refunded != 0 {
		t.Fatalf("step 4: job before the refunds: %+v", before.Job)
	}
	kinds := map[string]string{}
	for _, e := range after.Job.History {
		kinds[e.EntryID] = e.Kind
	}
	if after.Job.Refunded != 10 || kinds[first.EntryID] != replay.KindRefund || kinds[rest.EntryID] != replay.KindRefund || after.Job.ResultSHA256 == "" {
		t.Fatalf("step 4: job now: refunded %d, history %v", after.Job.Refunded, kinds)
	}
	if a := after.Account; a == nil || a.Refunded != 10 || a.Available != a.Balance || a.Balance != 100 {
		t.Fatalf("step 4: account now: %+v", after.Account)
	}
	text, err := auditRun(t, s, newReplayCommand(), "--until", "now")
	if err != nil || !strings.Contains(text, "jobs") || !strings.Contains(text, "COMPLETED") {
		t.Fatalf("step 4: whole-log replay: %v\n%s", err, text)
	}
	if _, err := auditRun(t, s, newReplayCommand(), "--until", "99999999"); !errors.Is(err, replay.ErrBeyondHead) {
		t.Fatalf("step 4: replay past the head: %v, want ErrBeyondHead", err)
	}
}

func auditJSON(t *testing.T, s *server, v any, args ...string) {
	t.Helper()
	out, err := auditRun(t, s, newReplayCommand(), append(args, "--json")...)
	if err != nil {
		t.Fatalf("replay %v: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("replay %v: %q: %v", args, out, err)
	}
}

// auditBundle exports the job's bundle once its entries are anchored and
// verifies it against the chain, then with one byte changed.
func auditBundle(t *testing.T, s *server, job string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dispute.json")
	eventually(t, "step 5: export once anchored", func() string {
		if _, err := auditRun(t, s, newAuditCommand(), "export", "--job", job, "-o", path); err != nil {
			return err.Error()
		}
		return ""
	})
	rpc := s.m.Anchor.Dev.URL()
	var out bytes.Buffer
	if err := runAuditVerify(context.Background(), nil, &out, path, rpc, s.m.Anchor.Dev.Trust(), false); err != nil {
		t.Fatalf("step 5: verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "credits.refunded") || !strings.Contains(out.String(), "verified: the") {
		t.Fatalf("step 5: verify output:\n%s", out.String())
	}
	t.Logf("audit verify %s --rpc %s:\n%s", path, rpc, out.String())
	file, _ := os.ReadFile(path)
	i := bytes.Index(file, []byte(`"tx_hash": "0x`)) + len(`"tx_hash": "0x`)
	file[i] ^= 1
	os.WriteFile(path, file, 0o600)
	out.Reset()
	if err := runAuditVerify(context.Background(), nil, &out, path, rpc, s.m.Anchor.Dev.Trust(), false); !errors.Is(err, errBundleNotVerified) || !strings.Contains(out.String(), "FAILED") {
		t.Fatalf("step 5: a changed bundle: %v\n%s", err, out.String())
	}
}

// auditCheck runs check beside the serving installation: clean, then with
// a read-model row edited behind the runner's back.
func auditCheck(t *testing.T, s *server) {
	t.Helper()
	rpc := s.m.Anchor.Dev.URL()
	var out string
	var err error
	eventually(t, "step 6: a clean check", func() string {
		if out, err = auditRun(t, s, newCheckCommand(), "--rpc", rpc); err != nil {
			return fmt.Sprintf("%v\n%s", err, out)
		}
		return ""
	})
	if !strings.Contains(out, "no findings") {
		t.Fatalf("step 6: clean check:\n%s", out)
	}
	t.Logf("check --rpc %s:\n%s", rpc, out)
	ctx := context.Background()
	st, err := projections.ReadStatus(ctx, s.m.DB, s.m.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var job string
	if err := s.m.DB.QueryRow(ctx, `SELECT job_id FROM rm_jobs WHERE charged > 0 LIMIT 1`).Scan(&job); err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("rm_jobs_g%d", st[0].Generation) // projections.All() starts with jobs
	if _, err := s.m.DB.Exec(ctx, `UPDATE `+table+` SET charged = 1000 WHERE job_id = ?`, job); err != nil {
		t.Fatal(err)
	}
	out, err = auditRun(t, s, newCheckCommand(), "--rpc", rpc, "--json")
	var r check.Report
	if !errors.Is(err, errFindings) || json.Unmarshal([]byte(out), &r) != nil || len(r.Findings) != 1 {
		t.Fatalf("step 6: check after an edit: %v\n%s", err, out)
	}
	if f := r.Findings[0]; f.Check != check.Projection || f.Key != "job_id="+job || f.Position == 0 || f.EntryID == "" ||
		!strings.Contains(f.Detail, "charged is 1000 in the read model, 10 in the replay") {
		t.Fatalf("step 6: finding %+v", f)
	}
	t.Logf("after the edit: %+v", r.Findings[0])
}

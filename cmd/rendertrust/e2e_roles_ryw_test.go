package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

const (
	// rywSubmissions is how many jobs TestRolesReadYourWritesAcrossProcesses
	// submits, each read back at once through the other api process.
	rywSubmissions = 24
	// rywBusyMax bounds how long a read answered 503 (the read models still
	// behind the creator's write after the server's bounded wait: "try
	// again") is retried, on a busy machine.
	rywBusyMax = 30 * time.Second
)

// TestRolesReadYourWritesAcrossProcesses runs a worker process and two
// api-only processes, A and B, on one PostgreSQL database:
//
//  1. a creator registers and buys 100 credits through A; a node enrolls
//     through A;
//  2. rywSubmissions times, the creator submits a job through one api
//     process (A, then B, in turn) and at once, through the other, reads
//     the job, the first page of the job list and the balance: the job is
//     there (not 404), listed, and the balance shows its hold — no answer
//     ever misses the creator's own write taken by the other process. A
//     503 (the read models still behind after the server's bounded wait,
//     which a busy machine may cause) is no answer: the read is retried,
//     and the 503s are counted in the log;
//  3. every job completes and is charged once;
//  4. a result the node uploaded through A downloads through B (the
//     processes share one result directory), verified against its hash.
func TestRolesReadYourWritesAcrossProcesses(t *testing.T) {
	skipIfShort(t, "starts server and node processes")
	dsn := pgtest.NewDatabase(t)
	bin := crashBinary(t)
	key := rolesKeyFile(t)
	worker := startRolesProcess(t, bin, dsn, "worker", "--jwt-key-file", key)
	worker.awaitLeading(t, rolesWorkers, rolesReadyTimeout)
	apiA := startRolesProcess(t, bin, dsn, "api-a", "--roles", "api", "--jwt-key-file", key)
	apiB := startRolesProcess(t, bin, dsn, "api-b", "--roles", "api", "--jwt-key-file", key)

	a := e2eCreatorWithCredits(t, apiA.base)
	b, err := client.New(apiB.base, client.WithTokens(a.Tokens()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rywBalanceShows(b, 100, new(int)); err != nil {
		t.Fatalf("step 1: the checkout through A read through B: %v", err)
	}
	node := startRolesNode(t, apiA.base, rolesEnrollmentToken(t, dsn))

	var jobs []string
	busy := 0
	for i := range rywSubmissions {
		write, read := a, b
		if i%2 == 1 {
			write, read = b, a
		}
		id := rolesSubmit(t, write, fmt.Sprintf("ryw-%d", i))
		jobs = append(jobs, id)
		n, err := rywReadsShow(read, id, int64(100-len(jobs)))
		if err != nil {
			t.Fatalf("step 2: submission %d through %s, read through %s: %v", i, write.BaseURL(), read.BaseURL(), err)
		}
		busy += n
	}
	t.Logf("%d submissions read back through the other process: every answer showed the write; %d reads answered 503 and were retried", rywSubmissions, busy)
	rolesAllCharged(t, a, node, jobs)

	link, err := b.ResultLink(context.Background(), jobs[0])
	if err != nil || !strings.HasPrefix(link.DownloadURL, apiB.base) {
		t.Fatalf("step 4: result link through B: %+v, %v; want one served by B", link, err)
	}
	if _, err := b.DownloadResult(context.Background(), jobs[0], t.TempDir()); err != nil {
		t.Fatalf("step 4: a result uploaded through A, downloaded through B: %v", err)
	}
}

// rywReadsShow reads the job, the first page of the job list and the
// balance through c, and returns what did not show the write, and how many
// reads answered 503 and were retried.
func rywReadsShow(c *client.Client, id string, available int64) (int, error) {
	ctx := context.Background()
	busy := 0
	var j client.Job
	err := rywRetryBusy(&busy, func() (err error) { j, err = c.GetJob(ctx, id); return err })
	if err != nil || j.ID != id {
		return busy, fmt.Errorf("GET the job: %+v, %v", j, err)
	}
	var page client.JobPage
	if err := rywRetryBusy(&busy, func() (err error) { page, err = c.JobsPage(ctx, client.JobQuery{}); return err }); err != nil {
		return busy, fmt.Errorf("GET the job list: %v", err)
	}
	if !slices.ContainsFunc(page.Jobs, func(j client.Job) bool { return j.ID == id }) {
		return busy, fmt.Errorf("the job list's first page (%d jobs) lacks %s", len(page.Jobs), id)
	}
	return busy, rywBalanceShows(c, available, &busy)
}

// rywBalanceShows reads the balance and checks what is available.
func rywBalanceShows(c *client.Client, available int64, busy *int) error {
	var bal client.Balance
	if err := rywRetryBusy(busy, func() (err error) { bal, err = c.Balance(context.Background()); return err }); err != nil {
		return fmt.Errorf("GET the balance: %v", err)
	}
	if bal.Available != available {
		return fmt.Errorf("balance %+v, want %d available", bal, available)
	}
	return nil
}

// rywRetryBusy runs read until it answers anything but 503 unavailable, for
// at most rywBusyMax, counting the 503s in busy.
func rywRetryBusy(busy *int, read func() error) error {
	deadline := time.Now().Add(rywBusyMax)
	for {
		err := read()
		var api *client.APIError
		if !errors.As(err, &api) || api.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return err
		}
		*busy++
		time.Sleep(50 * time.Millisecond) // a poll's pause, as e2eEventually's
	}
}

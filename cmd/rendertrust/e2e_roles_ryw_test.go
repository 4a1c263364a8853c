package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// rywSubmissions is how many jobs TestRolesReadYourWritesAcrossProcesses
// submits, each read back at once through the other api process.
const rywSubmissions = 24

// TestRolesReadYourWritesAcrossProcesses runs a worker process and two
// api-only processes, A and B, on one PostgreSQL database:
//
//  1. a creator registers and buys 100 credits through A; a node enrolls
//     through A;
//  2. rywSubmissions times, the creator submits a job through one api
//     process (A, then B, in turn) and at once, through the other, reads
//     the job, the first page of the job list and the balance: the job is
//     there (not 404), listed, and the balance shows its hold — the
//     creator's own write, taken by the other process, is visible on the
//     first try (no 503 either);
//  3. every job completes and is charged once.
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
	if err := rywBalanceShows(b, 100); err != nil {
		t.Fatalf("step 1: the checkout through A read through B: %v", err)
	}
	node := startRolesNode(t, apiA.base, rolesEnrollmentToken(t, dsn))

	var jobs []string
	for i := range rywSubmissions {
		write, read := a, b
		if i%2 == 1 {
			write, read = b, a
		}
		id := rolesSubmit(t, write, fmt.Sprintf("ryw-%d", i))
		jobs = append(jobs, id)
		if err := rywReadsShow(read, id, int64(100-len(jobs))); err != nil {
			t.Fatalf("step 2: submission %d through %s, read through %s: %v", i, write.BaseURL(), read.BaseURL(), err)
		}
	}
	rolesAllCharged(t, a, node, jobs)
}

// rywReadsShow reads, once each, the job, the first page of the job list
// and the balance through c, and returns what did not show the write.
func rywReadsShow(c *client.Client, id string, available int64) error {
	ctx := context.Background()
	if j, err := c.GetJob(ctx, id); err != nil || j.ID != id {
		return fmt.Errorf("GET the job: %+v, %v", j, err)
	}
	page, err := c.JobsPage(ctx, client.JobQuery{})
	if err != nil {
		return fmt.Errorf("GET the job list: %v", err)
	}
	if !slices.ContainsFunc(page.Jobs, func(j client.Job) bool { return j.ID == id }) {
		return fmt.Errorf("the job list's first page (%d jobs) lacks %s", len(page.Jobs), id)
	}
	return rywBalanceShows(c, available)
}

// rywBalanceShows reads the balance once and checks what is available.
func rywBalanceShows(c *client.Client, available int64) error {
	bal, err := c.Balance(context.Background())
	if err != nil {
		return fmt.Errorf("GET the balance: %v", err)
	}
	if bal.Available != available {
		return fmt.Errorf("balance %+v, want %d available", bal, available)
	}
	return nil
}

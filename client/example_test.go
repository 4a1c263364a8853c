package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rendertrust/rendertrust/client"
)

// This example is the creator guide's Python walkthrough in Go: register,
// submit a job, check it, and download its verified result. It runs against
// a small stand-in for the API; point client.New at a real server instead.
func Example() {
	api, srv := startFake()
	defer srv.Close()
	api.available = 100
	ctx := context.Background()

	c, err := client.New(srv.URL)
	if err != nil {
		panic(err)
	}
	if _, err := c.Register(ctx, "ada@example.com", "Ada", "correct horse"); err != nil {
		panic(err)
	}
	sub, err := c.SubmitJob(ctx, client.SubmitRequest{
		JobType: client.JobRender,
		Payload: map[string]string{"ref": "s3://your-bucket/scene.blend"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("Job %s dispatched to node %s\n", sub.JobID, sub.NodeID)

	job, err := c.GetJob(ctx, sub.JobID)
	if err != nil {
		panic(err)
	}
	fmt.Println("Status:", job.Status)

	dir, _ := os.MkdirTemp("", "rendertrust-example")
	defer os.RemoveAll(dir)
	d, err := c.DownloadResult(ctx, sub.JobID, filepath.Join(dir, "output.json"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("Saved %d bytes, sha256 %s…\n", d.Bytes, d.SHA256[:12])
	// Output:
	// Job job-1 dispatched to node node-1
	// Status: COMPLETED
	// Saved 38 bytes, sha256 9616fc77ea66…
}

// Errors of the API match sentinels with errors.Is.
func ExampleClient_SubmitJob_errors() {
	_, srv := startFake()
	defer srv.Close()
	ctx := context.Background()
	c, _ := client.New(srv.URL)
	c.Register(ctx, "ada@example.com", "Ada", "correct horse")

	_, err := c.SubmitJob(ctx, client.SubmitRequest{JobType: client.JobRender, PayloadRef: "s3://bucket/scene.blend"})
	fmt.Println(errors.Is(err, client.ErrInsufficientCredits))

	_, err = c.SubmitJob(ctx, client.SubmitRequest{JobType: client.JobInference, PayloadRef: "s3://bucket/model"})
	fmt.Println(errors.Is(err, client.ErrNoHealthyNodes))

	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code)
	}
	// Output:
	// true
	// true
	// 503 no_healthy_nodes
}

// ListJobs follows the pages of the job list for the caller.
func ExampleClient_ListJobs() {
	api, srv := startFake()
	defer srv.Close()
	api.available = 100
	ctx := context.Background()
	c, _ := client.New(srv.URL)
	c.Register(ctx, "ada@example.com", "Ada", "correct horse")
	for range 3 {
		c.SubmitJob(ctx, client.SubmitRequest{JobType: client.JobEcho, Payload: map[string]int{"n": 1}})
	}

	jobs, err := c.ListJobs(ctx, client.StatusCompleted)
	if err != nil {
		panic(err)
	}
	for _, j := range jobs {
		fmt.Printf("%s: %s\n", j.ID, j.Status)
	}
	// Output:
	// job-3: COMPLETED
	// job-2: COMPLETED
	// job-1: COMPLETED
}

// A program that outlives its process saves the session whenever it
// changes — refresh tokens rotate — and resumes it with WithTokens.
func ExampleWithTokenHook() {
	_, srv := startFake()
	defer srv.Close()
	ctx := context.Background()

	var saved client.Tokens // a real program writes these to a 0600 file
	c, _ := client.New(srv.URL, client.WithTokenHook(func(t client.Tokens) { saved = t }))
	c.Register(ctx, "ada@example.com", "Ada", "correct horse")

	resumed, _ := client.New(srv.URL, client.WithTokens(saved))
	b, err := resumed.Balance(ctx)
	fmt.Println(b.Available, err)
	// Output:
	// 0 <nil>
}

// Package client is the Go SDK of the RenderTrust API, the Go counterpart of
// the creator guide's Python SDK: log in, buy credits, submit jobs, follow
// them, download their results, and audit the ledger.
//
//	c, err := client.New("https://api.rendertrust.com")
//	_, err = c.Login(ctx, "you@example.com", "your-password")
//	sub, err := c.SubmitJob(ctx, client.SubmitRequest{
//		JobType: client.JobRender,
//		Payload: map[string]string{"ref": "s3://your-bucket/scene.blend"},
//	})
//	fmt.Printf("Job %s dispatched to node %s\n", sub.JobID, sub.NodeID)
//	job, err := c.GetJob(ctx, sub.JobID)
//	d, err := c.DownloadResult(ctx, sub.JobID, "output.png")
//
// # Sessions
//
// Login and Register start a session. The client refreshes the access token
// for the caller — before a request when it has expired, and once after a
// 401 — with one refresh at a time, since refresh tokens rotate and a spent
// one presented again revokes the session. Programs that outlive a process
// save the session with WithTokenHook and restore it with WithTokens.
//
// # Errors
//
// Every call takes a context. An error answer of the API is an *APIError
// (status, stable code, message, Retry-After); it matches sentinels with
// errors.Is: ErrInsufficientCredits (402), ErrNotFound (404),
// ErrRateLimited (429), ErrNoHealthyNodes (503 no_healthy_nodes),
// ErrUnavailable (other 503s, such as proofs while the anchoring service is
// off), ErrUnauthorized, ErrForbidden, ErrConflict and ErrInvalid.
//
// # Results
//
// DownloadResult fetches the result through its expiring link, which needs
// no token, checks its SHA-256 against the hash the job's completion event
// recorded (and the ledger anchors), and writes it atomically.
package client

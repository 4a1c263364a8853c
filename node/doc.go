// Package node is the RenderTrust compute node agent behind
// `rendertrust node`: it enrolls with a one-time token, keeps its
// credential in a state file (0600) so a restart does not enroll again,
// heartbeats, long-polls for assignments, runs them with bounded
// concurrency, and reports each one's start, result (streamed, with its
// SHA-256) or failure, retrying reports through transient errors.
//
// Executors run the jobs: Echo and CPUBenchmark are built in (Builtin
// returns both); Command runs an external program, such as Blender, with
// the payload's reference substituted into its arguments — never through a
// shell — under a timeout and the result size limit.
//
// The agent never reports a result it did not produce: a result is uploaded
// only when its executor returned the whole of it, and every other outcome
// (an error, a panic, a timeout, a shutdown) is reported as a failure, so
// the server retries the job and charges nothing for the attempt. Jobs in
// flight are recorded in the state file; a run after a crash reports them
// as failed before taking work. A node that dies and never comes back is
// the server's to detect: it fails the jobs of a node silent for longer
// than its NodeLostAfter.
//
// Running an agent inside another program (serve --dev):
//
//	agent, err := node.New(node.Config{
//		Server:      "http://127.0.0.1:8080",
//		EnrollToken: token, // needed once; the state file keeps the credential
//		StatePath:   filepath.Join(dataDir, "node.json"),
//		Executors:   node.Builtin(),
//	})
//	go agent.Run(ctx) // returns after ctx ends and running jobs are dealt with
package node

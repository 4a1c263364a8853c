package creator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/client"
)

// Limits of the jobs commands.
const (
	// payloadFileBytesMax bounds a --payload-file (the API takes 64 KiB).
	payloadFileBytesMax = 1 << 20
	// jobsListDefault is how many jobs `jobs list` shows when not told.
	jobsListDefault = 50
	// watchIntervalDefault is how often `jobs watch` looks; the desktop app
	// refreshes every 5 s.
	watchIntervalDefault = 2 * time.Second
	// watchIntervalMin is the first wait of `jobs watch`, doubling up to
	// the interval, and the shortest interval it takes.
	watchIntervalMin = 200 * time.Millisecond
)

// errJobDidNotComplete is returned by `jobs watch` for a job that ended
// FAILED or CANCELLED, so scripts see a non-zero exit.
var errJobDidNotComplete = errors.New("the job did not complete")

// newJobsCommand returns `rendertrust jobs`: submit, list, get, cancel,
// result and watch.
func newJobsCommand() *cobra.Command {
	f := &cliFlags{}
	cmd := &cobra.Command{Use: "jobs", Short: "Submit jobs, follow them and download their results"}
	bindCLIFlags(cmd.PersistentFlags(), f)
	cmd.AddCommand(newJobsSubmitCommand(f), newJobsListCommand(f), newJobsGetCommand(f),
		newJobsCancelCommand(f), newJobsResultCommand(f), newJobsWatchCommand(f), newJobsTypesCommand(f))
	return cmd
}

func newJobsSubmitCommand(f *cliFlags) *cobra.Command {
	var req client.SubmitRequest
	var payload, payloadFile, priority string
	var wait bool
	cmd := &cobra.Command{
		Use:   "submit TYPE [--ref URI | --payload JSON | --payload-file FILE]",
		Short: "Submit a job: render, inference, generic, cpu_benchmark or echo (cpu_benchmark and echo need no payload)",
		Args:  cobra.ExactArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			req.JobType, req.Priority = client.JobType(args[0]), client.Priority(priority)
			p, err := inlinePayload(payload, payloadFile)
			if err != nil {
				return err
			}
			if p != nil {
				req.Payload = p
			}
			sub, err := c.SubmitJob(cmd.Context(), req)
			if err != nil {
				return err
			}
			if !wait {
				return printSubmitted(cmd.OutOrStdout(), f.json, sub)
			}
			if !f.json {
				// The same stream as the progress lines, so they read in order.
				fmt.Fprintf(cmd.OutOrStdout(), "Submitted job %s (cost %d).\n", sub.JobID, sub.Cost)
			}
			return watchJob(cmd.Context(), c, cmd.OutOrStdout(), f.json, sub.JobID, watchIntervalDefault)
		}),
	}
	cmd.Flags().StringVar(&req.PayloadRef, "ref", "", "payload URI: s3://, ipfs:// or https://")
	cmd.Flags().StringVar(&payload, "payload", "", "inline JSON payload")
	cmd.Flags().StringVar(&payloadFile, "payload-file", "", "file holding the inline JSON payload (- for standard input)")
	cmd.Flags().StringVar(&priority, "priority", "normal", "low, normal or high")
	cmd.Flags().BoolVar(&req.GPURequired, "gpu", false, "the job needs a GPU")
	cmd.Flags().StringVar(&req.IdempotencyKey, "idempotency-key", "", "resubmitting with the same key returns the first submission")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the job until it ends")
	// No payload flag is required: the server asks for one only for the
	// types that need it, with a clear 400.
	cmd.MarkFlagsMutuallyExclusive("ref", "payload", "payload-file")
	return cmd
}

// inlinePayload returns the JSON of --payload or --payload-file, or nil
// when neither is given. It returns an error for JSON that does not parse.
func inlinePayload(payload, file string) (json.RawMessage, error) {
	raw := []byte(payload)
	switch file {
	case "":
	case "-":
		b, err := io.ReadAll(io.LimitReader(os.Stdin, payloadFileBytesMax))
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
		raw = b
	default:
		b, err := cliReadFile(file, payloadFileBytesMax)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	if len(raw) == 0 {
		return nil, nil
	}
	if !json.Valid(raw) {
		return nil, errors.New("payload: not valid JSON (use --ref for a URI)")
	}
	return raw, nil
}

// cliReadFile reads at most max bytes of a file, failing for a larger one.
func cliReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

func printSubmitted(w io.Writer, asJSON bool, s client.Submitted) error {
	if asJSON {
		return cliPrintJSON(w, s)
	}
	t := cliTable(w)
	fmt.Fprintln(t, "JOB\tNODE\tSTATUS\tCOST")
	fmt.Fprintf(t, "%s\t%s\t%s\t%d\n", s.JobID, cliDash(s.NodeID), s.Status, s.Cost)
	return t.Flush()
}

func newJobsListCommand(f *cliFlags) *cobra.Command {
	var status string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--status S] [--limit N]",
		Short: "List your jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			var st client.Status
			if status != "" {
				var err error
				if st, err = client.ParseStatus(status); err != nil {
					return err
				}
			}
			jobs, err := collectJobs(cmd.Context(), c, st, limit)
			if err != nil {
				return err
			}
			return printJobs(cmd.OutOrStdout(), f.json, jobs)
		}),
	}
	cmd.Flags().StringVar(&status, "status", "", "only jobs in this status: QUEUED, DISPATCHED, RUNNING, COMPLETED, FAILED, CANCELLED")
	cmd.Flags().IntVar(&limit, "limit", jobsListDefault, fmt.Sprintf("show at most this many jobs (0: all, up to %d)", client.ListJobsMax))
	return cmd
}

// collectJobs returns up to limit jobs (0: up to client.ListJobsMax).
func collectJobs(ctx context.Context, c *client.Client, st client.Status, limit int) ([]client.Job, error) {
	if limit <= 0 || limit > client.ListJobsMax {
		limit = client.ListJobsMax
	}
	jobs := []client.Job{}
	for j, err := range c.AllJobs(ctx, st) {
		if err != nil {
			return nil, err
		}
		if jobs = append(jobs, j); len(jobs) == limit {
			break
		}
	}
	return jobs, nil
}

func printJobs(w io.Writer, asJSON bool, jobs []client.Job) error {
	if asJSON {
		return cliPrintJSON(w, jobs)
	}
	t := cliTable(w)
	fmt.Fprintln(t, "JOB\tTYPE\tSTATUS\tNODE\tATTEMPTS\tCOST\tSUBMITTED")
	for _, j := range jobs {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", j.ID, j.JobType, j.Status, cliDash(j.NodeID), j.Attempts, j.Cost, j.SubmittedAt.Local().Format(time.DateTime))
	}
	return t.Flush()
}

func newJobsGetCommand(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get JOB_ID",
		Short: "Show one job in full",
		Args:  cobra.ExactArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			j, err := c.GetJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJob(cmd.OutOrStdout(), f.json, j)
		}),
	}
}

// printJob prints a job as a two-column table of its set fields.
func printJob(w io.Writer, asJSON bool, j client.Job) error {
	if asJSON {
		return cliPrintJSON(w, j)
	}
	t := cliTable(w)
	row := func(k string, v any) { fmt.Fprintf(t, "%s\t%v\n", k, v) }
	row("Job", j.ID)
	row("Type", j.JobType)
	row("Status", j.Status)
	row("Priority", j.Priority)
	row("GPU", j.GPURequired)
	row("Node", cliDash(j.NodeID))
	row("Attempts", j.Attempts)
	row("Payload", cliDash(j.PayloadRef))
	row("Cost", j.Cost)
	row("Charged", j.Charged)
	if j.Refunded > 0 {
		row("Refunded", j.Refunded)
	}
	for _, opt := range []struct {
		k, v string
	}{{"Last error", j.LastError}, {"Cancel reason", j.CancelReason}, {"Result SHA-256", j.ResultSHA256}} {
		if opt.v != "" {
			row(opt.k, opt.v)
		}
	}
	if j.ResultSHA256 != "" {
		row("Result bytes", j.ResultBytes)
	}
	row("Submitted", j.SubmittedAt.Local().Format(time.DateTime))
	for _, ts := range []struct {
		k string
		v *time.Time
	}{{"Dispatched", j.DispatchedAt}, {"Started", j.StartedAt}, {"Completed", j.CompletedAt}, {"Failed", j.FailedAt}, {"Cancelled", j.CancelledAt}} {
		if ts.v != nil {
			row(ts.k, ts.v.Local().Format(time.DateTime))
		}
	}
	return t.Flush()
}

func newJobsCancelCommand(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a QUEUED or DISPATCHED job; its credits are released",
		Args:  cobra.ExactArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.CancelJob(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, client.ErrConflict) {
					return fmt.Errorf("%w (only QUEUED or DISPATCHED jobs can be cancelled)", err)
				}
				return err
			}
			if f.json {
				return cliPrintJSON(cmd.OutOrStdout(), map[string]any{"job_id": args[0], "status": client.StatusCancelled})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cancelled job %s.\n", args[0])
			return nil
		}),
	}
}

func newJobsResultCommand(f *cliFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "result JOB_ID [-o PATH]",
		Short: "Download a completed job's result, checking its SHA-256",
		Args:  cobra.ExactArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			d, err := c.DownloadResult(cmd.Context(), args[0], output)
			if err != nil {
				if errors.Is(err, client.ErrConflict) {
					return fmt.Errorf("%w (the job has not completed)", err)
				}
				return err
			}
			return printDownload(cmd.OutOrStdout(), f.json, d)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file or directory to save to (default: JOB_ID.result here)")
	return cmd
}

func printDownload(w io.Writer, asJSON bool, d client.Download) error {
	if asJSON {
		return cliPrintJSON(w, map[string]any{"path": d.Path, "sha256": d.SHA256, "bytes": d.Bytes})
	}
	fmt.Fprintf(w, "Saved %s (%d bytes, SHA-256 %s verified).\n", d.Path, d.Bytes, d.SHA256)
	return nil
}

func newJobsWatchCommand(f *cliFlags) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "watch JOB_ID",
		Short: "Follow a job until it ends, printing each change",
		Args:  cobra.ExactArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			return watchJob(cmd.Context(), c, cmd.OutOrStdout(), f.json, args[0], max(interval, watchIntervalMin))
		}),
	}
	cmd.Flags().DurationVar(&interval, "interval", watchIntervalDefault, "how often to look")
	return cmd
}

// watchJob polls a job — soon at first, then every interval — and prints
// each change of status, node or attempt (a JSON line each with --json)
// until it ends. It returns errJobDidNotComplete for a job that ended
// FAILED or CANCELLED.
func watchJob(ctx context.Context, c *client.Client, w io.Writer, asJSON bool, id string, interval time.Duration) error {
	var last client.Job
	for wait := watchIntervalMin; ; wait = min(2*wait, interval) {
		j, err := c.GetJob(ctx, id)
		if err != nil {
			return err
		}
		if j.Status != last.Status || j.NodeID != last.NodeID || j.Attempts != last.Attempts {
			printWatchLine(w, asJSON, j)
			last = j
		}
		if j.Status.Ended() {
			if j.Status != client.StatusCompleted {
				return fmt.Errorf("%w: job %s is %s", errJobDidNotComplete, j.ID, j.Status)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func printWatchLine(w io.Writer, asJSON bool, j client.Job) {
	if asJSON {
		json.NewEncoder(w).Encode(j)
		return
	}
	line := fmt.Sprintf("%s  %-10s  node %s  attempt %d", time.Now().Format(time.TimeOnly), j.Status, cliDash(j.NodeID), j.Attempts)
	switch {
	case j.Status == client.StatusCompleted:
		line += fmt.Sprintf("  result %d bytes, sha256 %s", j.ResultBytes, j.ResultSHA256)
	case j.LastError != "":
		line += "  last error: " + j.LastError
	}
	fmt.Fprintln(w, line)
}

// cliDash shows an empty value as "-".
func cliDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newJobsTypesCommand(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "types",
		Short: "List the job types and what one job of each costs",
		Args:  cobra.NoArgs,
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			types, err := c.JobTypes(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				return cliPrintJSON(cmd.OutOrStdout(), types)
			}
			t := cliTable(cmd.OutOrStdout())
			fmt.Fprintln(t, "TYPE\tNAME\tCREDITS PER JOB")
			for _, jt := range types {
				fmt.Fprintf(t, "%s\t%s\t%d\n", jt.JobType, jt.DisplayName, jt.Cost)
			}
			return t.Flush()
		}),
	}
}

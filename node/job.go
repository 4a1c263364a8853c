package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/client"
)

// Limits of reporting.
const (
	// reportAttemptsMax bounds the attempts at one report; a report still
	// not made stays in the state and is retried with every heartbeat.
	reportAttemptsMax = 8
	// backoffMin and backoffMax bound the wait between attempts.
	backoffMin = 250 * time.Millisecond
	backoffMax = 15 * time.Second
	// uploadTimeout bounds one upload of a result.
	uploadTimeout = 30 * time.Minute
)

// Names of a job's files in the work dir.
const (
	jobDirPattern     = "job-*"    // a job's work dir
	resultFilePattern = "result-*" // a result waiting for its upload
)

// result is an executor's output, stored in a file until it is uploaded.
type result struct {
	path   string
	sha256 string // lower-case hex
	size   int64
	// inputSHA256 is the SHA-256 of the input the node fetched for the
	// job, "" when it fetched none; the completion records it.
	inputSHA256 string
}

// runJob takes one assignment through: it records the job in the state,
// reports it started, runs it, and reports the result or the failure. It
// frees the job's slot when done.
func (a *Agent) runJob(workCtx context.Context, as assignment) {
	defer a.jobs.Done()
	defer a.release()
	defer a.done(as.JobID)
	log := a.log.With("job", as.JobID, "type", as.JobType, "attempt", as.Attempt)
	if err := a.state.addJob(as.JobID); err != nil {
		log.Warn("cannot record the job in the state file; a crash now would leave it to the server's timeouts", "err", err)
	}
	if !a.reportStarted(as.JobID, log) {
		return
	}
	log.Info("job started")
	start := time.Now()
	res, err := a.execute(workCtx, as)
	if res.path != "" {
		defer os.Remove(res.path)
	}
	if err == nil {
		if err = a.reportResult(as.JobID, res, log); err == nil {
			log.Info("job completed", "bytes", res.size, "sha256", res.sha256, "took", time.Since(start).Round(time.Millisecond))
			return
		}
	}
	if workCtx.Err() != nil {
		err = fmt.Errorf("interrupted: the node is shutting down (%w)", err)
	}
	a.reportFailure(as.JobID, err, log)
}

// reportStarted tells the server the job is running and reports whether to
// run it. A job the server has moved on from (cancelled, or dispatched
// elsewhere after a timeout) is dropped — unless an earlier attempt of this
// report may have arrived, which the refusal then only echoes.
func (a *Agent) reportStarted(id string, log *slog.Logger) bool {
	o := a.report(func(ctx context.Context) error { return a.api.started(ctx, id) })
	switch {
	case o.err == nil, o.disp == gone && o.ambiguous:
		return true
	case o.disp == gone || o.disp == refused:
		log.Info("job not started: the server has moved on from it", "err", o.err)
		a.forget(id, log)
	default:
		log.Warn("could not report the job started; it will be reported failed", "err", o.err)
	}
	return false
}

// reportResult uploads the result, which completes the job. It returns nil
// when the server has the outcome (or has moved on from the job), and an
// error to report as the job's failure when the server refused the result.
func (a *Agent) reportResult(id string, res result, log *slog.Logger) error {
	o := a.report(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
		defer cancel()
		return a.api.upload(ctx, id, res)
	})
	switch {
	case o.err == nil:
		a.forget(id, log)
	case o.disp == gone:
		// Either an earlier attempt completed the job, or the server ended
		// the attempt (the node seemed lost): nothing more to say.
		log.Warn("result not taken: the job is no longer running here", "err", o.err)
		a.forget(id, log)
	case o.disp == refused:
		return fmt.Errorf("result refused: %w", o.err)
	default:
		log.Warn("could not upload the result; the job stays in the state and will be reported failed", "err", o.err)
	}
	return nil
}

// reportFailure tells the server the job failed, with why.
func (a *Agent) reportFailure(id string, cause error, log *slog.Logger) {
	msg := failureMessage(cause)
	log.Warn("job failed", "err", msg)
	o := a.report(func(ctx context.Context) error { return a.api.failed(ctx, id, msg) })
	if o.err == nil || o.disp == gone || o.disp == refused {
		a.forget(id, log)
		return
	}
	log.Warn("could not report the failure; retrying with the next heartbeats", "err", o.err)
}

// forget removes a job whose outcome the server has from the state.
func (a *Agent) forget(id string, log *slog.Logger) {
	if err := a.state.removeJob(id); err != nil {
		log.Warn("cannot update the state file", "err", err)
	}
}

// reportLeftovers reports as failed the jobs in the state that no part of
// this run is working on: those a crashed run left, and reports that could
// not be made before. Each gets up to attempts tries.
func (a *Agent) reportLeftovers(ctx context.Context, attempts int) {
	for _, id := range a.state.get().Jobs {
		if ctx.Err() != nil || !a.take(id) {
			continue
		}
		log := a.log.With("job", id)
		o := a.reportN(ctx, attempts, func(ctx context.Context) error {
			return a.api.failed(ctx, id, "the node lost this attempt (it restarted, or could not report in time)")
		})
		if o.err == nil || o.disp == gone || o.disp == refused {
			log.Info("reported a lost attempt as failed", "err", o.err)
			a.forget(id, log)
		}
		a.done(id)
	}
}

// execute runs the job's executor into a result file, bounded by
// ResultBytesMax and JobTimeout. It returns the result, or why there is
// none; a failed run leaves no file.
func (a *Agent) execute(ctx context.Context, as assignment) (res result, err error) {
	ex, ok := a.cfg.Executors[as.JobType]
	if !ok {
		return result{}, fmt.Errorf("job type %q is not configured on this node", as.JobType)
	}
	dir, err := os.MkdirTemp(a.workDir, jobDirPattern)
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	f, err := os.CreateTemp(a.workDir, resultFilePattern)
	if err != nil {
		return result{}, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
			res = result{}
		}
	}()
	ctx, cancel := context.WithTimeoutCause(ctx, a.cfg.JobTimeout, fmt.Errorf("job timed out after %s", a.cfg.JobTimeout))
	defer cancel()
	h := sha256.New()
	lw := &limitWriter{w: io.MultiWriter(f, h), n: a.cfg.ResultBytesMax}
	job, err := prepareInput(ctx, a.cfg.Inputs, ex, Job{ID: as.JobID, Type: as.JobType, PayloadRef: as.PayloadRef,
		Payload: as.Payload, GPURequired: as.GPURequired, Attempt: as.Attempt, WorkDir: dir})
	if err != nil {
		return result{}, err
	}
	if err := runExecutor(ctx, ex, job, lw); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = context.Cause(ctx) // "job timed out after …"
		}
		return result{}, err
	}
	res = result{path: f.Name(), sha256: hex.EncodeToString(h.Sum(nil)), size: a.cfg.ResultBytesMax - lw.n}
	if job.Input != nil {
		res.inputSHA256 = job.Input.SHA256
	}
	return res, nil
}

// runExecutor runs ex, turning a panic into an error: a broken executor
// fails its job, not the node.
func runExecutor(ctx context.Context, ex Executor, job Job, out io.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("executor panicked: %v", p)
		}
	}()
	return ex.Run(ctx, job, out)
}

// failureMessage is the text a failure report carries.
func failureMessage(err error) string {
	if err == nil {
		err = errors.New("unknown failure")
	}
	s := strings.ToValidUTF8(err.Error(), "?")
	if len(s) > failureBytesMax {
		s = s[:failureBytesMax]
	}
	return s
}

// outcome is how a report went.
type outcome struct {
	err       error       // nil: made
	disp      disposition // of err
	ambiguous bool        // an attempt may have taken effect without an answer
}

// report makes one report, retrying transient errors up to
// reportAttemptsMax times. Reports are not cancelled by shutdown: the
// server must learn what happened to the job.
func (a *Agent) report(call func(context.Context) error) outcome {
	return a.reportN(context.Background(), reportAttemptsMax, call)
}

// reportN is report with attempts tries, until ctx ends. A refused
// credential stops the agent.
func (a *Agent) reportN(ctx context.Context, attempts int, call func(context.Context) error) outcome {
	var o outcome
	b := newBackoff()
	for i := 0; i < attempts; i++ {
		if i > 0 && !b.wait(ctx, o.err) {
			break
		}
		o.err = call(ctx)
		if o.err == nil {
			return o
		}
		o.disp = classify(o.err)
		o.ambiguous = o.ambiguous || ambiguous(o.err)
		if o.disp == fatal {
			a.stop(ErrCredentialRejected)
		}
		if o.disp != retry {
			return o
		}
	}
	return o
}

// backoff doubles the wait between attempts from backoffMin to backoffMax,
// or waits as long as the server's Retry-After says (capped the same).
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: backoffMin} }

func (b *backoff) reset() { b.d = backoffMin }

// next returns the wait before the attempt after err.
func (b *backoff) next(err error) time.Duration {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return min(apiErr.RetryAfter, backoffMax)
	}
	return b.d
}

// wait sleeps before the next attempt and reports whether ctx is still live.
func (b *backoff) wait(ctx context.Context, err error) bool {
	d := b.next(err)
	b.d = min(2*b.d, backoffMax)
	return sleep(ctx, d)
}

package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
)

// Input is a job's input as the node fetched it into the job's work
// directory: the payload URI's content.
type Input struct {
	Path   string // the local file, inside the job's work dir
	SHA256 string // of the content, lower-case hex
	Bytes  int64
}

// InputNeed says what an executor needs of a job whose payload is a URI.
type InputNeed int

// What executors need of a URI payload.
const (
	// InputNone: the executor never reads the input (echo, cpu_benchmark);
	// the node does not fetch it.
	InputNone InputNeed = iota
	// InputRequired: the node fetches the input before running the
	// executor, and a fetch that fails fails the attempt with the reason.
	InputRequired
	// InputOptional: the node fetches the input when it can; when it
	// cannot, the executor runs anyway and sees why in Job.InputErr (the
	// demo executors, which then work from the reference itself).
	InputOptional
)

// InputUser is an Executor that says what it needs of a URI payload.
// Executors that do not implement it get InputNone.
type InputUser interface {
	InputNeed() InputNeed
}

// InputFetcher downloads a payload URI to a file. Fetch writes the content
// of ref to path and returns its SHA-256 and size, or an error that says
// what went wrong (not found, too large, a CID that does not match).
type InputFetcher interface {
	Fetch(ctx context.Context, ref, path string) (Input, error)
}

// errNoFetcher is the fetch error of a node configured without a fetcher.
var errNoFetcher = errors.New("this node is configured to fetch no inputs")

// inputFileName is the fetched input's name in the job's work directory.
const inputFileName = "input"

// prepareInput fetches the input of job into its work directory when its
// executor needs one. It returns the job with Input (or InputErr) set, and
// an error only when the executor requires the input and the fetch failed:
// that error fails the attempt.
func prepareInput(ctx context.Context, f InputFetcher, ex Executor, job Job) (Job, error) {
	need := InputNone
	if u, ok := ex.(InputUser); ok {
		need = u.InputNeed()
	}
	if need == InputNone || job.PayloadRef == "" {
		return job, nil
	}
	var in Input
	err := errNoFetcher
	if f != nil {
		in, err = f.Fetch(ctx, job.PayloadRef, filepath.Join(job.WorkDir, inputFileName))
	}
	switch {
	case err == nil:
		job.Input = &in
		return job, nil
	case need == InputOptional && ctx.Err() == nil:
		job.InputErr = err
		return job, nil
	}
	return job, fmt.Errorf("fetch input %s: %w", job.PayloadRef, err)
}

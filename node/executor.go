package node

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Job is an assignment as an executor sees it.
type Job struct {
	ID   string
	Type string
	// PayloadRef is the payload's URI (s3://, ipfs://, https://); "" when
	// the payload is inline.
	PayloadRef string
	// Payload is the inline JSON payload, as text; "" when PayloadRef is set.
	Payload     string
	GPURequired bool
	Attempt     int // 1 for the first dispatch
	// WorkDir is a directory private to this run of the job, removed after it.
	WorkDir string
	// Input is the content of PayloadRef, fetched into WorkDir, for an
	// executor that asks for it (see InputUser); nil otherwise.
	Input *Input
	// InputErr is why PayloadRef could not be fetched, for an executor
	// whose input is optional; nil otherwise.
	InputErr error
}

// Executor runs the jobs of one type. Run writes the job's result to out
// and returns nil only when out holds the whole result: the agent uploads
// a result only then, and reports a failure with the error's text
// otherwise. Run must return soon after ctx ends (a timeout, a shutdown),
// with an error.
type Executor interface {
	Run(ctx context.Context, job Job, out io.Writer) error
}

// ErrResultTooLarge is returned by writes past the result size limit.
var ErrResultTooLarge = errors.New("result exceeds the size limit")

// limitWriter passes at most n bytes to w, then fails with ErrResultTooLarge.
type limitWriter struct {
	w io.Writer
	n int64 // bytes still allowed
}

// Write writes p, or fails with ErrResultTooLarge (writing nothing) if p
// does not fit.
func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("%w of %d bytes", ErrResultTooLarge, l.n)
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	return n, err
}

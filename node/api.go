package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/rendertrust/rendertrust/client"
)

// Limits of the node protocol.
const (
	// responseBytesMax bounds a JSON answer of the server.
	responseBytesMax = 4 << 20
	// pollWaitMax is the longest long poll the server holds.
	pollWaitMax = 30 * time.Second
	// pollSlack is how much longer than its wait a long poll may take
	// before the agent gives up on it.
	pollSlack = 15 * time.Second
	// requestTimeout bounds every other request but the result upload.
	requestTimeout = 30 * time.Second
)

// api speaks the node endpoints of the RenderTrust API. Its errors are
// *client.APIError for error answers and transport errors otherwise.
type api struct {
	base       string
	http       *http.Client
	credential string // set once enrolled, before any other call
}

// assignment is a job the server dispatched to this node.
type assignment struct {
	JobID       string `json:"job_id"`
	JobType     string `json:"job_type"`
	PayloadRef  string `json:"payload_ref"`
	Payload     string `json:"payload"`
	GPURequired bool   `json:"gpu_required"`
	Attempt     int    `json:"attempt"`
}

type enrollment struct {
	Token    string   `json:"token"`
	Name     string   `json:"name"`
	JobTypes []string `json:"job_types"`
	GPU      bool     `json:"gpu"`
	Slots    int      `json:"slots"`
}

// enroll trades a one-time token for the node's id and credential.
func (a *api) enroll(ctx context.Context, e enrollment) (nodeID, credential string, err error) {
	var resp struct {
		NodeID     string `json:"node_id"`
		Credential string `json:"credential"`
	}
	if err := a.json(ctx, http.MethodPost, "/api/v1/nodes/enroll", e, &resp); err != nil {
		return "", "", err
	}
	return resp.NodeID, resp.Credential, nil
}

func (a *api) heartbeat(ctx context.Context) error {
	return a.json(ctx, http.MethodPost, "/api/v1/nodes/heartbeat", nil, nil)
}

// assignments long-polls up to wait for jobs dispatched to this node and
// not yet started.
func (a *api) assignments(ctx context.Context, wait time.Duration) ([]assignment, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+pollSlack)
	defer cancel()
	var resp struct {
		Jobs []assignment `json:"jobs"`
	}
	path := "/api/v1/nodes/assignments?wait=" + strconv.Itoa(int(wait.Seconds()))
	err := a.do(ctx, http.MethodGet, path, nil, -1, nil, &resp)
	return resp.Jobs, err
}

func (a *api) started(ctx context.Context, job string) error {
	return a.json(ctx, http.MethodPost, "/api/v1/nodes/jobs/"+url.PathEscape(job)+"/started", nil, nil)
}

func (a *api) failed(ctx context.Context, job, message string) error {
	return a.json(ctx, http.MethodPost, "/api/v1/nodes/jobs/"+url.PathEscape(job)+"/failed", map[string]string{"error": message}, nil)
}

// upload streams the result file at path with its SHA-256; the server
// completes the job.
func (a *api) upload(ctx context.Context, job string, r result) error {
	f, err := os.Open(r.path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := http.Header{"X-Result-Sha256": {r.sha256}, "Content-Type": {"application/octet-stream"}}
	if r.inputSHA256 != "" {
		h.Set("X-Input-Sha256", r.inputSHA256)
	}
	return a.do(ctx, http.MethodPut, "/api/v1/nodes/jobs/"+url.PathEscape(job)+"/result", f, r.size, h, nil)
}

// json sends body (when not nil) as JSON, bounded by requestTimeout.
func (a *api) json(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	size := int64(0)
	var h http.Header
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, size, h = bytes.NewReader(b), int64(len(b)), http.Header{"Content-Type": {"application/json"}}
	}
	return a.do(ctx, method, path, rd, size, h, out)
}

// do makes one request with the node's credential and decodes a JSON
// answer into out (when not nil). size is the body's length (-1: none).
func (a *api) do(ctx context.Context, method, path string, body io.Reader, size int64, h http.Header, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "rendertrust-node")
	if a.credential != "" {
		req.Header.Set("Authorization", "Bearer "+a.credential)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return &transportError{op: method + " " + path, err: err}
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, responseBytesMax))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return client.ErrorFromResponse(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, responseBytesMax)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// transportError is a request that got no answer: it may or may not have
// reached the server.
type transportError struct {
	op  string
	err error
}

// Error names the request and what went wrong.
func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }

// Unwrap returns the transport's error.
func (e *transportError) Unwrap() error { return e.err }

// ErrCredentialRejected is returned by Run when the server refuses the
// node's credential (revoked, or the state file belongs to another server's
// database): the node must be enrolled again with a new token.
var ErrCredentialRejected = errors.New("the server rejected the node's credential; enroll again with a new token")

// disposition is what to do about a failed call.
type disposition int

const (
	retry   disposition = iota // transient: try again later
	gone                       // the job moved on (cancelled, re-dispatched, ended): drop it
	fatal                      // the credential is refused: stop the agent
	refused                    // anything else the server refused: do not repeat it
)

// classify says what a failed call's error calls for.
func classify(err error) disposition {
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.Status == http.StatusUnauthorized:
			return fatal
		case apiErr.Temporary():
			return retry
		case apiErr.Status == http.StatusConflict, apiErr.Status == http.StatusNotFound, apiErr.Status == http.StatusForbidden:
			return gone
		}
		return refused
	case errors.Is(err, context.Canceled):
		return refused
	}
	return retry // no answer: the network, a timeout, a restarting server
}

// ambiguous reports whether a failed call may have taken effect anyway.
func ambiguous(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

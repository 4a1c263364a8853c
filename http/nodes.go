package http

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/blobstore"
	"github.com/rendertrust/rendertrust/domain"
)

type enrollRequest struct {
	Token    string   `json:"token"`
	Name     string   `json:"name"`
	JobTypes []string `json:"job_types"`
	GPU      bool     `json:"gpu"`
	Slots    int      `json:"slots"`
}

// EnrollResponse gives a new node its id and the credential it uses from now on.
type EnrollResponse struct {
	NodeID     domain.NodeID `json:"node_id"`
	Credential string        `json:"credential"`
}

func (s *Server) enrollNode(c echo.Context) error {
	var req enrollRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	types := make([]domain.JobType, len(req.JobTypes))
	for i, t := range req.JobTypes {
		typ, err := domain.ParseJobType(t)
		if err != nil {
			return err
		}
		types[i] = typ
	}
	e := domain.Enrollment{Name: req.Name, Capabilities: domain.Capabilities{JobTypes: types, GPU: req.GPU, Slots: req.Slots}}
	id, cred, err := s.Nodes.EnrollWithToken(c.Request().Context(), req.Token, e)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, EnrollResponse{NodeID: id, Credential: cred})
}

func (s *Server) heartbeat(c echo.Context) error {
	if err := s.Jobs.Heartbeat(c.Request().Context(), nodeOf(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"node_id": nodeOf(c), "healthy": true})
}

// Assignment is a job handed to a node.
type Assignment struct {
	JobID       domain.JobID   `json:"job_id"`
	JobType     domain.JobType `json:"job_type"`
	PayloadRef  string         `json:"payload_ref,omitempty"`
	Payload     string         `json:"payload,omitempty"` // inline JSON, as text
	GPURequired bool           `json:"gpu_required"`
	Attempt     int            `json:"attempt"`
}

// assignments long-polls (up to ?wait= seconds, at most assignmentWaitMax)
// for jobs dispatched to the calling node and not yet started. A poll
// counts as a heartbeat.
func (s *Server) assignments(c echo.Context) error {
	wait, err := intParam(c, "wait", 0, 0, int(assignmentWaitMax.Seconds()))
	if err != nil {
		return err
	}
	node, reg := nodeOf(c), s.Assignments
	// The heartbeat is not bounded by the wait: with wait=0 it would fail.
	if err := s.Jobs.Heartbeat(c.Request().Context(), node); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Duration(wait)*time.Second)
	defer cancel()
	for {
		changed := reg.Changed()
		out, err := s.currentAssignments(c.Request().Context(), node, reg.Assigned(node))
		if err != nil {
			return err
		}
		if len(out) > 0 || wait == 0 {
			return answerAssignments(c, out)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return answerAssignments(c, nil)
		case <-s.closing:
			return answerAssignments(c, nil)
		}
	}
}

// currentAssignments returns the jobs of ids that the log still has
// assigned to node. The registry may lag the log (a process catching up
// after a restart still counts a job the log has since completed): such a
// job is left out rather than handed to the node again.
func (s *Server) currentAssignments(ctx context.Context, node domain.NodeID, ids []domain.JobID) ([]Assignment, error) {
	out := []Assignment{}
	for _, id := range ids {
		j, err := s.Jobs.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.Node() != node || (j.Status() != domain.StatusDispatched && j.Status() != domain.StatusRunning) {
			continue
		}
		p := j.Payload()
		out = append(out, Assignment{JobID: id, JobType: j.Type(), PayloadRef: p.URI, Payload: p.Inline, GPURequired: j.GPU(), Attempt: j.Attempts()})
	}
	return out, nil
}

func answerAssignments(c echo.Context, out []Assignment) error {
	if out == nil {
		out = []Assignment{}
	}
	return c.JSON(http.StatusOK, map[string]any{"jobs": out})
}

// nodeJobResponse answers the node's reports.
type nodeJobResponse struct {
	JobID  domain.JobID  `json:"job_id"`
	Status domain.Status `json:"status"`
}

// nodeJob loads job id for node. A job not assigned to node answers as a
// job that does not exist: a node learns nothing of other nodes' jobs
// (their status showed in the refusals).
func (s *Server) nodeJob(ctx context.Context, node domain.NodeID, id domain.JobID) (*domain.Job, error) {
	j, err := s.Jobs.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if !j.Exists() || j.Node() != node {
		return nil, fmt.Errorf("%w: %s", domain.ErrJobNotFound, id)
	}
	return j, nil
}

func (s *Server) jobStarted(c echo.Context) error {
	id := domain.JobID(c.Param("id"))
	if _, err := s.nodeJob(c.Request().Context(), nodeOf(c), id); err != nil {
		return err
	}
	pos, err := s.Jobs.StartJob(c.Request().Context(), actor(c), nodeOf(c), id)
	if err != nil {
		return err
	}
	s.waitRead(c.Request().Context(), pos)
	return c.JSON(http.StatusOK, nodeJobResponse{id, domain.StatusRunning})
}

type failRequest struct {
	Error string `json:"error"`
}

func (s *Server) jobFailed(c echo.Context) error {
	var req failRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id := domain.JobID(c.Param("id"))
	if _, err := s.nodeJob(c.Request().Context(), nodeOf(c), id); err != nil {
		return err
	}
	pos, err := s.Jobs.FailJob(c.Request().Context(), actor(c), nodeOf(c), id, req.Error)
	if err != nil {
		return err
	}
	s.waitRead(c.Request().Context(), pos)
	j, err := s.Jobs.Job(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, nodeJobResponse{id, j.Status()})
}

// uploadResult streams the job's result into the blob store, checking it
// against the SHA-256 the node claims (X-Result-SHA256), then completes the
// job with that hash. Only the node running the job may upload.
//
// The uploads of one job run one at a time, and a stored result the job
// could not complete with is deleted: two racing uploads of different
// content each stored a blob, and the loser's stayed behind, unreferenced.
func (s *Server) uploadResult(c echo.Context) error {
	ctx, node, id := c.Request().Context(), nodeOf(c), domain.JobID(c.Param("id"))
	defer s.uploads.lock(id)()
	j, err := s.nodeJob(ctx, node, id)
	if err != nil {
		return err
	}
	if j.Status() != domain.StatusRunning {
		return &domain.InvalidTransitionError{From: j.Status(), To: domain.StatusCompleted}
	}
	claimed := c.Request().Header.Get("X-Result-SHA256")
	if !validSHA256(claimed) {
		return domain.Errorf(domain.CodeInvalid, "X-Result-SHA256: the result's SHA-256, 64 lower-case hex digits, is required")
	}
	// The input the node fetched and ran the job on, recorded in the
	// completion so the anchored history shows what was rendered.
	input := c.Request().Header.Get("X-Input-SHA256")
	if input != "" && !validSHA256(input) {
		return domain.Errorf(domain.CodeInvalid, "X-Input-SHA256: the input's SHA-256, 64 lower-case hex digits")
	}
	// Named by job and content, so a late upload from a node that lost the
	// job can never replace the result the job completed with.
	blob := resultBlob(id, claimed)
	sum, size, err := s.Results.Put(blob, c.Request().Body, resultBytesMax, claimed)
	switch err {
	case nil:
	case blobstore.ErrTooLarge:
		return domain.Errorf(domain.CodeTooLarge, "result: larger than %d bytes", resultBytesMax)
	case blobstore.ErrHashMismatch:
		return domain.Errorf(domain.CodeInvalid, "X-Result-SHA256: does not match the uploaded content")
	default:
		return err
	}
	pos, err := s.Jobs.CompleteJobInput(ctx, actor(c), node, id, sum, size, input)
	if err != nil {
		s.dropUnusedResult(id, blob, sum)
		return err
	}
	s.waitRead(ctx, pos)
	return c.JSON(http.StatusOK, map[string]any{"job_id": id, "status": domain.StatusCompleted, "result_sha256": sum, "result_bytes": size})
}

// dropUnusedResult deletes the stored blob of an upload whose completion
// failed, unless the job did complete with that content (a completion that
// failed after all) or its state cannot be read: an orphan is better than
// a lost result.
func (s *Server) dropUnusedResult(id domain.JobID, blob, sum string) {
	ctx, cancel := context.WithTimeout(context.Background(), resultCleanupTimeout)
	defer cancel()
	j, err := s.Jobs.Job(ctx, id)
	if err != nil || j.ResultSHA256() == sum {
		return
	}
	if err := s.Results.Delete(ctx, blob); err != nil {
		s.log.Warn("could not delete an unused result", "job", id, "blob", blob, "err", err)
	}
}

// jobLocks serializes work per job.
type jobLocks struct {
	mu    sync.Mutex
	locks map[domain.JobID]*jobLock
}

type jobLock struct {
	sync.Mutex
	holders int // holding or waiting
}

// lock waits for id's lock and returns its unlock.
func (l *jobLocks) lock(id domain.JobID) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[domain.JobID]*jobLock{}
	}
	jl := l.locks[id]
	if jl == nil {
		jl = &jobLock{}
		l.locks[id] = jl
	}
	jl.holders++
	l.mu.Unlock()
	jl.Lock()
	return func() {
		jl.Unlock()
		l.mu.Lock()
		if jl.holders--; jl.holders == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

// resultBlob names a job's result in the blob store.
func resultBlob(job domain.JobID, sha256Hex string) string { return string(job) + "." + sha256Hex }

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

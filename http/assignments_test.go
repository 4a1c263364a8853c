package http

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
)

// laggingRegistry is a dispatcher's registry that has not yet read the
// log's latest events: it still counts the jobs it was given as assigned.
type laggingRegistry struct{ ids []domain.JobID }

func (r laggingRegistry) Assigned(domain.NodeID) []domain.JobID { return r.ids }
func (r laggingRegistry) Changed() <-chan struct{}              { return make(chan struct{}) }
func (r laggingRegistry) NodeStatus(domain.NodeID) (time.Time, int) {
	return time.Time{}, len(r.ids)
}

// jobsAsLogged answers Job from jobs built by applying their events, as
// the write side does; the other commands are not called.
type jobsAsLogged struct {
	JobService
	jobs map[domain.JobID]*domain.Job
}

func (j jobsAsLogged) Job(_ context.Context, id domain.JobID) (*domain.Job, error) {
	return j.jobs[id], nil
}
func (j jobsAsLogged) Heartbeat(context.Context, domain.NodeID) error { return nil }

// TestAssignmentsLeaveOutWhatTheLogMovedOn: a node's assignments list only
// the jobs the log still has DISPATCHED or RUNNING on that node, whatever a
// lagging registry says. A server restarted on a long log once handed its
// local node a job completed before the crash, 63 times in 1.5 s, each
// start refused with 409, while its one slot looked busy.
func TestAssignmentsLeaveOutWhatTheLogMovedOn(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	job := func(id domain.JobID, node domain.NodeID, then ...domain.Event) *domain.Job {
		j := domain.NewJob(id)
		j.Apply(domain.JobSubmitted{JobID: id, Owner: "u1", Type: domain.JobEcho, At: at})
		j.Apply(domain.JobDispatched{JobID: id, NodeID: node, Attempt: 1, At: at})
		for _, e := range then {
			j.Apply(e)
		}
		return j
	}
	jobs := map[domain.JobID]*domain.Job{
		"dispatched": job("dispatched", "n1"),
		"running":    job("running", "n1", domain.JobStarted{JobID: "running", NodeID: "n1", At: at}),
		"completed":  job("completed", "n1", domain.JobCompleted{JobID: "completed", Owner: "u1", NodeID: "n1", At: at}),
		"elsewhere":  job("elsewhere", "n2"),
	}
	reg := laggingRegistry{ids: []domain.JobID{"dispatched", "running", "completed", "elsewhere"}}
	s := &Server{Config: Config{Jobs: jobsAsLogged{jobs: jobs}, Assignments: reg}, echo: echo.New(), closing: make(chan struct{})}
	rec := httptest.NewRecorder()
	c := s.echo.NewContext(httptest.NewRequest("GET", "/api/v1/nodes/assignments?wait=0", nil), rec)
	c.Set(ctxNode, domain.NodeID("n1"))
	if err := s.assignments(c); err != nil {
		t.Fatal(err)
	}
	var got struct{ Jobs []Assignment }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var ids []domain.JobID
	for _, a := range got.Jobs {
		ids = append(ids, a.JobID)
	}
	if len(ids) != 2 || ids[0] != "dispatched" || ids[1] != "running" {
		t.Fatalf("assignments of n1 = %v; want [dispatched running]", ids)
	}
}

package domain

import (
	"reflect"
	"testing"
	"time"
)

// enrolledNode returns node "n1" enrolled at t0 for render and echo with a
// GPU and 2 slots.
func enrolledNode(tb testing.TB) *Node {
	tb.Helper()
	n := NewNode("n1")
	ev, err := n.Enroll(Enrollment{Name: " box ", Capabilities: Capabilities{
		JobTypes: []JobType{JobEcho, JobRender, JobEcho}, GPU: true, Slots: 2}}, t0)
	mustDecide(tb, n, ev, err)
	return n
}

func TestNodeEnroll(t *testing.T) {
	n := enrolledNode(t)
	if got, want := n.JobTypes(), []JobType{JobRender, JobEcho}; !reflect.DeepEqual(got, want) {
		t.Errorf("JobTypes() = %v, want %v (deduplicated, in JobTypes() order)", got, want)
	}
	if n.Name() != "box" || n.Slots() != 2 || !n.GPU() || !n.EnrolledAt().Equal(t0) || n.Version() != 1 {
		t.Errorf("enrolled node = %+v", n)
	}
	caps := Capabilities{JobTypes: []JobType{JobEcho}, Slots: 1}
	tests := []struct {
		name    string
		node    *Node
		e       Enrollment
		wantErr error
	}{
		{"ErrNodeExists", enrolledNode(t), Enrollment{"x", caps}, ErrNodeExists},
		{"ErrInvalidID", NewNode("n:1"), Enrollment{"x", caps}, ErrInvalidID},
		{"ErrInvalidNode name", NewNode("n2"), Enrollment{"  ", caps}, ErrInvalidNode},
		{"ErrInvalidNode no types", NewNode("n2"), Enrollment{"x", Capabilities{Slots: 1}}, ErrInvalidNode},
		{"ErrInvalidNode zero slots", NewNode("n2"), Enrollment{"x", Capabilities{JobTypes: caps.JobTypes}}, ErrInvalidNode},
		{"ErrInvalidNode too many slots", NewNode("n2"),
			Enrollment{"x", Capabilities{JobTypes: caps.JobTypes, Slots: SlotsMax + 1}}, ErrInvalidNode},
		{"ErrUnknownJobType", NewNode("n2"),
			Enrollment{"x", Capabilities{JobTypes: []JobType{"mining"}, Slots: 1}}, ErrUnknownJobType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := tt.node.Enroll(tt.e, t0)
			wantErr(t, ev, err, tt.wantErr)
		})
	}
}

func TestNodeCanRun(t *testing.T) {
	n := enrolledNode(t)
	tests := []struct {
		typ  JobType
		gpu  bool
		want bool
	}{
		{JobRender, true, true},
		{JobEcho, false, true},
		{JobInference, false, false},
	}
	for _, tt := range tests {
		if got := n.CanRun(tt.typ, tt.gpu); got != tt.want {
			t.Errorf("CanRun(%s, gpu=%v) = %v, want %v", tt.typ, tt.gpu, got, tt.want)
		}
	}
	ev, err := n.ChangeCapabilities(Capabilities{JobTypes: []JobType{JobRender}, Slots: 4}, t0)
	mustDecide(t, n, ev, err)
	if n.CanRun(JobRender, true) || !n.CanRun(JobRender, false) || n.Slots() != 4 {
		t.Errorf("after dropping the GPU: CanRun(render, gpu) = %v, slots %d", n.CanRun(JobRender, true), n.Slots())
	}
	ev, err = n.Retire("decommissioned", t0.Add(time.Hour))
	mustDecide(t, n, ev, err)
	if n.CanRun(JobRender, false) || !n.Retired() || !n.RetiredAt().Equal(t0.Add(time.Hour)) {
		t.Errorf("retired node can still run, or retired at %v", n.RetiredAt())
	}
}

func TestNodeLifecycleErrors(t *testing.T) {
	caps := Capabilities{JobTypes: []JobType{JobEcho}, Slots: 1}
	retired := enrolledNode(t)
	ev, err := retired.Retire("old", t0)
	mustDecide(t, retired, ev, err)
	tests := []struct {
		name    string
		decide  func() ([]Event, error)
		wantErr error
	}{
		{"ErrNodeNotFound change", func() ([]Event, error) { return NewNode("n9").ChangeCapabilities(caps, t0) }, ErrNodeNotFound},
		{"ErrNodeNotFound retire", func() ([]Event, error) { return NewNode("n9").Retire("x", t0) }, ErrNodeNotFound},
		{"ErrNodeRetired change", func() ([]Event, error) { return retired.ChangeCapabilities(caps, t0) }, ErrNodeRetired},
		{"ErrNodeRetired retire", func() ([]Event, error) { return retired.Retire("x", t0) }, ErrNodeRetired},
		{"ErrInvalidReason", func() ([]Event, error) { return enrolledNode(t).Retire("", t0) }, ErrInvalidReason},
		{"ErrInvalidNode change", func() ([]Event, error) {
			return enrolledNode(t).ChangeCapabilities(Capabilities{JobTypes: caps.JobTypes}, t0)
		}, ErrInvalidNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := tt.decide()
			wantErr(t, ev, err, tt.wantErr)
		})
	}
	t.Run("unchanged capabilities", func(t *testing.T) {
		n := enrolledNode(t)
		ev, err := n.ChangeCapabilities(Capabilities{JobTypes: []JobType{JobRender, JobEcho}, GPU: true, Slots: 2}, t0)
		if err != nil || len(ev) != 0 {
			t.Errorf("got %d events, %v; want none, nil", len(ev), err)
		}
	})
}

func TestNodeRebuild(t *testing.T) {
	n := NewNode("n1")
	var all []Event
	for _, decide := range []func() ([]Event, error){
		func() ([]Event, error) {
			return n.Enroll(Enrollment{"box", Capabilities{[]JobType{JobEcho}, false, 1}}, t0)
		},
		func() ([]Event, error) {
			return n.ChangeCapabilities(Capabilities{[]JobType{JobEcho, JobCPUBenchmark}, false, 3}, t0.Add(time.Minute))
		},
		func() ([]Event, error) { return n.Retire("done", t0.Add(time.Hour)) },
	} {
		ev, err := decide()
		all = append(all, mustDecide(t, n, ev, err)...)
	}
	mustRoundTrip(t, all)
	if got := loadNode("n1", all); !reflect.DeepEqual(got, n) {
		t.Errorf("LoadNode = %+v, want %+v", got, n)
	}
	if got, want := n.JobTypes(), []JobType{JobCPUBenchmark, JobEcho}; !reflect.DeepEqual(got, want) {
		t.Errorf("JobTypes() = %v, want %v", got, want)
	}
	snap := n.Snapshot()
	snap.jobTypes[0] = JobRender
	if n.jobTypes[0] != JobCPUBenchmark {
		t.Errorf("Snapshot shares its job types with the node")
	}
}

func TestHealthy(t *testing.T) {
	tests := []struct {
		name     string
		lastSeen time.Time
		want     bool
	}{
		{"just now", t0, true},
		{"at the limit", t0.Add(-NodeHealthyWithin), true},
		{"too long ago", t0.Add(-NodeHealthyWithin - time.Millisecond), false},
		{"never", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Healthy(tt.lastSeen, t0); got != tt.want {
				t.Errorf("Healthy() = %v, want %v", got, tt.want)
			}
		})
	}
}

package esdbtest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore/esdb/esdbtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// connect starts a server and returns the real v4 client connected to it.
func connect(t *testing.T, conn func(*esdbtest.Server) string) (*esdbclient.Client, *esdbtest.Server) {
	t.Helper()
	srv := esdbtest.MustStart(t)
	cfg, err := esdbclient.ParseConnectionString(conn(srv))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, srv
}

func plain(s *esdbtest.Server) string { return s.URL() }

func events(n int, typ string) []esdbclient.EventData {
	out := make([]esdbclient.EventData, n)
	for i := range out {
		out[i] = esdbclient.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdbclient.ContentTypeJson, Data: []byte(`{"i":1}`)}
	}
	return out
}

func mustAppend(t *testing.T, c *esdbclient.Client, stream string, exp esdbclient.ExpectedRevision, evs ...esdbclient.EventData) *esdbclient.WriteResult {
	t.Helper()
	r, err := c.AppendToStream(context.Background(), stream, esdbclient.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

// drain reads a ReadStream to its end.
func drain(rs *esdbclient.ReadStream, err error) ([]*esdbclient.RecordedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdbclient.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev.Event)
	}
}

func revisions(evs []*esdbclient.RecordedEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.EventNumber
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadStream(t *testing.T) {
	c, _ := connect(t, plain)
	mustAppend(t, c, "s-1", esdbclient.NoStream{}, events(5, "e")...)
	ctx := context.Background()
	cases := []struct {
		name  string
		opts  esdbclient.ReadStreamOptions
		count uint64
		want  []uint64
	}{
		{"ForwardsFromStart", esdbclient.ReadStreamOptions{}, 3, []uint64{0, 1, 2}},
		{"ForwardsFromRevision", esdbclient.ReadStreamOptions{From: esdbclient.Revision(3)}, 10, []uint64{3, 4}},
		{"ForwardsFromEnd", esdbclient.ReadStreamOptions{From: esdbclient.End{}}, 10, nil},
		{"BackwardsFromEnd", esdbclient.ReadStreamOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 2, []uint64{4, 3}},
		{"BackwardsFromRevision", esdbclient.ReadStreamOptions{Direction: esdbclient.Backwards, From: esdbclient.Revision(1)}, 10, []uint64{1, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := drain(c.ReadStream(ctx, "s-1", tc.opts, tc.count))
			if err != nil || !equal(revisions(got), tc.want) {
				t.Fatalf("revisions %v, %v; want %v", revisions(got), err, tc.want)
			}
		})
	}
	t.Run("NotFound", func(t *testing.T) {
		_, err := drain(c.ReadStream(ctx, "missing", esdbclient.ReadStreamOptions{}, 10))
		var ee *esdbclient.Error
		if !errors.As(err, &ee) || ee.Code() != esdbclient.ErrorCodeResourceNotFound {
			t.Fatalf("err = %v, want ErrorCodeResourceNotFound", err)
		}
	})
}

// TestReadAll: $all starts with system events, positions grow with gaps,
// forwards reads include their start position and backwards reads exclude it.
func TestReadAll(t *testing.T) {
	c, _ := connect(t, plain)
	mustAppend(t, c, "a-1", esdbclient.Any{}, events(3, "e")...)
	mustAppend(t, c, "b-1", esdbclient.Any{}, events(2, "e")...)
	ctx := context.Background()
	all, err := drain(c.ReadAll(ctx, esdbclient.ReadAllOptions{}, 100))
	if err != nil || len(all) != 7 || !strings.HasPrefix(all[0].StreamID, "$") {
		t.Fatalf("$all = %d events (first %s), %v; want 2 system events then 5", len(all), all[0].StreamID, err)
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1].Position, all[i].Position
		if b.Prepare <= a.Prepare+1 || b.Commit < a.Commit {
			t.Fatalf("positions %v then %v: want increasing with gaps", a, b)
		}
	}
	if all[2].Position.Commit != all[4].Position.Commit || all[2].Position.Prepare == all[4].Position.Prepare {
		t.Errorf("one append's events at commit positions %d..%d, want one shared", all[2].Position.Commit, all[4].Position.Commit)
	}
	from := all[3].Position
	fwd, _ := drain(c.ReadAll(ctx, esdbclient.ReadAllOptions{From: from}, 2))
	if len(fwd) != 2 || fwd[0].Position != from {
		t.Errorf("forwards from %v: %d events starting %v, want 2 starting there", from, len(fwd), fwd[0].Position)
	}
	back, _ := drain(c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: from}, 10))
	if len(back) != 3 || back[0].Position != all[2].Position {
		t.Errorf("backwards from %v: %d events, want the 3 before it", from, len(back))
	}
	last, _ := drain(c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1))
	if len(last) != 1 || last[0].StreamID != "b-1" || last[0].EventNumber != 1 {
		t.Errorf("last event of $all: %+v, want b-1@1", last)
	}
}

func TestAppendExpectedRevision(t *testing.T) {
	c, _ := connect(t, plain)
	mustAppend(t, c, "x-1", esdbclient.NoStream{}, events(2, "e")...) // revisions 0, 1
	cases := []struct {
		name   string
		stream string
		exp    esdbclient.ExpectedRevision
		wrong  bool
	}{
		{"NoStreamOnExisting", "x-1", esdbclient.NoStream{}, true},
		{"StreamExistsOnNew", "x-new", esdbclient.StreamExists{}, true},
		{"RevisionBehind", "x-1", esdbclient.Revision(0), true},
		{"RevisionAhead", "x-1", esdbclient.Revision(5), true},
		{"RevisionRight", "x-1", esdbclient.Revision(1), false},
		{"StreamExistsOnExisting", "x-1", esdbclient.StreamExists{}, false},
		{"AnyOnNew", "x-any", esdbclient.Any{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AppendToStream(context.Background(), tc.stream, esdbclient.AppendToStreamOptions{ExpectedRevision: tc.exp}, events(1, "e")...)
			var ee *esdbclient.Error
			isWrong := errors.As(err, &ee) && ee.Code() == esdbclient.ErrorCodeWrongExpectedVersion
			if isWrong != tc.wrong || (!tc.wrong && err != nil) {
				t.Fatalf("err = %v, want wrong expected version: %v", err, tc.wrong)
			}
		})
	}
}

// TestIdempotentAppend: repeating an append's event ids at the same place
// succeeds without writing; a partial repeat is a wrong expected version.
func TestIdempotentAppend(t *testing.T) {
	c, srv := connect(t, plain)
	batch := events(3, "e")
	first := mustAppend(t, c, "i-1", esdbclient.NoStream{}, batch...)
	n := srv.Len()
	again := mustAppend(t, c, "i-1", esdbclient.NoStream{}, batch...)
	anyAgain := mustAppend(t, c, "i-1", esdbclient.Any{}, batch...)
	if srv.Len() != n || again.NextExpectedVersion != first.NextExpectedVersion || anyAgain.CommitPosition != first.CommitPosition {
		t.Fatalf("repeat wrote %d events; results %+v, %+v, want %+v", srv.Len()-n, again, anyAgain, first)
	}
	_, err := c.AppendToStream(context.Background(), "i-1", esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.Any{}}, batch[2], events(1, "e")[0])
	var ee *esdbclient.Error
	if !errors.As(err, &ee) || ee.Code() != esdbclient.ErrorCodeWrongExpectedVersion {
		t.Fatalf("partial repeat: %v, want wrong expected version", err)
	}
}

func TestMaxAppendSize(t *testing.T) {
	c, _ := connect(t, plain)
	big := esdbclient.EventData{EventID: uuid.New(), EventType: "big", ContentType: esdbclient.ContentTypeBinary, Data: make([]byte, esdbtest.MaxAppendSizeBytes+1)}
	_, err := c.AppendToStream(context.Background(), "big-1", esdbclient.AppendToStreamOptions{}, big)
	if status.Code(errors.Unwrap(err)) != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
}

// recvEvents receives n events from a subscription, skipping checkpoints
// and caught-up messages.
func recvEvents(t *testing.T, sub *esdbclient.Subscription, n int) []*esdbclient.RecordedEvent {
	t.Helper()
	var out []*esdbclient.RecordedEvent
	for len(out) < n {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatalf("dropped after %d events: %v", len(out), ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			out = append(out, ev.EventAppeared.Event)
		}
	}
	return out
}

// TestSubscribeToStream: a subscription from a revision starts after it,
// delivers stored events, then live ones.
func TestSubscribeToStream(t *testing.T) {
	c, _ := connect(t, plain)
	mustAppend(t, c, "sub-1", esdbclient.NoStream{}, events(3, "e")...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := c.SubscribeToStream(ctx, "sub-1", esdbclient.SubscribeToStreamOptions{From: esdbclient.Revision(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	mustAppend(t, c, "sub-1", esdbclient.Any{}, events(2, "e")...)
	mustAppend(t, c, "other-1", esdbclient.Any{}, events(1, "e")...)
	if got := revisions(recvEvents(t, sub, 4)); !equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("revisions %v, want [1 2 3 4]", got)
	}
}

// TestSubscribeToAllFiltered: a filtered subscription to $all delivers only
// what matches, stored then live, and sends checkpoints as it scans.
func TestSubscribeToAllFiltered(t *testing.T) {
	c, _ := connect(t, plain)
	for range 40 {
		mustAppend(t, c, "noise-1", esdbclient.Any{}, events(1, "noise")...)
	}
	mustAppend(t, c, "app:job-1", esdbclient.Any{}, events(2, "job.created")...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	filters := map[string]*esdbclient.SubscriptionFilter{
		"StreamPrefix":   {Type: esdbclient.StreamFilterType, Prefixes: []string{"app:"}},
		"EventTypeRegex": {Type: esdbclient.EventFilterType, Regex: `^job\.`},
	}
	for name, f := range filters {
		t.Run(name, func(t *testing.T) {
			sub, err := c.SubscribeToAll(ctx, esdbclient.SubscribeToAllOptions{From: esdbclient.Start{}, Filter: f, MaxSearchWindow: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			checkpoints := 0
			var got []*esdbclient.RecordedEvent
			for len(got) < 2 {
				ev := sub.Recv()
				switch {
				case ev.SubscriptionDropped != nil:
					t.Fatal(ev.SubscriptionDropped.Error)
				case ev.CheckPointReached != nil:
					checkpoints++
				case ev.EventAppeared != nil:
					got = append(got, ev.EventAppeared.Event)
				}
			}
			if got[0].StreamID != "app:job-1" || got[1].StreamID != "app:job-1" || checkpoints == 0 {
				t.Fatalf("got %s, %s after %d checkpoints; want app:job-1 twice and a checkpoint", got[0].StreamID, got[1].StreamID, checkpoints)
			}
		})
	}
}

// TestDiscover: an esdb+discover:// connection string goes through gossip.
func TestDiscover(t *testing.T) {
	c, _ := connect(t, func(s *esdbtest.Server) string { return "esdb+discover://" + s.Addr() + "?tls=false" })
	mustAppend(t, c, "d-1", esdbclient.NoStream{}, events(1, "e")...)
}

// TestRestartKeepsData: a restart drops the client's calls but not the log.
func TestRestartKeepsData(t *testing.T) {
	c, srv := connect(t, plain)
	mustAppend(t, c, "r-1", esdbclient.NoStream{}, events(2, "e")...)
	if err := srv.Restart(0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.AppendToStream(context.Background(), "r-1", esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.Revision(1)}, events(1, "e")...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("append after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

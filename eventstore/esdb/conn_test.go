package esdb

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/rendertrust/rendertrust/eventstore"
)

// callsWait bounds how long a test waits for calls that must end: a few
// discoveries on a busy machine.
const callsWait = 60 * time.Second

// TestRedialWaitsForCallsInFlight: 1. a call holds the store's client;
// 2. redial replaces the client while the call is inside it; 3. the call
// goes on reading through the old client, which is not closed under it;
// 4. once the call ends, the old client is closed; 5. the store appends
// through the new one.
func TestRedialWaitsForCallsInFlight(t *testing.T) {
	s, srv := openTest(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "job-1", eventstore.NoStream, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	old := s.cur.Load()
	inside, proceed := make(chan struct{}), make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- s.call(func(c *esdbclient.Client) error {
			close(inside)
			<-proceed
			_, err := readAllEvents(ctx, c, esdbclient.Start{}, 10)
			return err
		})
	}()
	<-inside
	s.redial(old, closedClientError(t, srv.URL()))
	if s.cur.Load() == old {
		t.Fatal("redial kept the client")
	}
	close(proceed)
	if err := <-result; err != nil {
		t.Fatalf("read in flight during the redial: %v; want it served by the old client", err)
	}
	eventually(t, "the replaced client closed once no call used it", func() bool {
		release := old.acquire() // a probe is a call too: not closed under it
		_, err := readAllEvents(ctx, old.client, esdbclient.Start{}, 1)
		release(err)
		return isConnectionClosed(err)
	})
	if _, err := s.Append(ctx, "job-1", eventstore.Exact(1), testEvent(1)); err != nil {
		t.Fatalf("append through the new client: %v", err)
	}
}

// TestCallsWaitOutAFailingDiscovery: 1. a client has never reached its
// server, which is down; 2. one call starts its discovery, a second call
// comes while it runs; 3. the discovery gives up and the client closes
// itself; 4. both calls end with an error, none stays blocked in the dead
// client (the v4 client leaves calls queued behind a failed discovery
// blocked for good).
func TestCallsWaitOutAFailingDiscovery(t *testing.T) {
	cfg, err := esdbclient.ParseConnectionString("esdb://" + downAddr(t) + "?tls=false&maxDiscoverAttempts=3&discoveryInterval=500")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = clientLog
	client, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{cfg: cfg}
	s.cur.Store(&conn{client: client})
	t.Cleanup(func() {
		if !t.Failed() { // else a call may be blocked in the client, and close would wait for it
			s.cur.Load().close()
		}
	})
	ctx := context.Background()
	read := func(c *esdbclient.Client) error {
		_, err := readAllEvents(ctx, c, esdbclient.Start{}, 1)
		return err
	}
	first := make(chan struct{})
	errs := make(chan error, 2)
	go func() {
		errs <- s.call(func(c *esdbclient.Client) error { close(first); return read(c) })
	}()
	<-first
	go func() { errs <- s.call(read) }()
	deadline := time.After(callsWait)
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("a read from a server that is down succeeded")
			}
		case <-deadline:
			t.Fatalf("a call is still blocked in the client after %v", callsWait)
		}
	}
}

// closedClientError returns the error a closed client answers with.
func closedClientError(t *testing.T, url string) error {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = clientLog
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, err = readAllEvents(context.Background(), c, esdbclient.Start{}, 1)
	if !isConnectionClosed(err) {
		t.Fatalf("read through a closed client: %v, want ErrorCodeConnectionClosed", err)
	}
	return err
}

func isConnectionClosed(err error) bool {
	var ee *esdbclient.Error
	return errors.As(err, &ee) && ee.Code() == esdbclient.ErrorCodeConnectionClosed
}

// downAddr returns a loopback address nothing listens on.
func downAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// eventually polls cond until it holds, failing after callsWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(callsWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: not %s", callsWait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

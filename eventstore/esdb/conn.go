package esdb

import (
	"errors"
	"sync"
	"sync/atomic"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// conn is one v4 client and the calls using it. The client is not safe to
// close while a call is inside it: Close closes the channel through which
// every call asks the client's connection goroutine for a connection, so a
// call that is sending on it panics ("send on closed channel"). And once
// that goroutine gives up a discovery it exits, and every call that was
// queued on the channel behind the discovery blocks for good. So each call
// holds enter for its duration (see acquire), and the client is closed only
// under enter held alone, once no call uses it.
type conn struct {
	client *esdbclient.Client
	// enter is held for reading by each call while the client is connected,
	// and alone while the client may have to discover the server, so no
	// call is queued behind a discovery that may give up.
	enter sync.RWMutex
	// connected says the last call that ended reached the server; a new
	// client, and one whose call found the server unavailable (the client
	// then discovers again on its next call), is not.
	connected atomic.Bool
	closed    bool // guarded by enter
}

// acquire waits until a call may use the client, and returns its release:
// beside the other calls while the client is connected, else alone. The
// wait is bounded by the calls in flight, which end with their contexts,
// and by one discovery.
func (c *conn) acquire() (release func(err error)) {
	if c.connected.Load() {
		c.enter.RLock()
		return func(err error) { c.settle(err); c.enter.RUnlock() }
	}
	c.enter.Lock()
	return func(err error) { c.settle(err); c.enter.Unlock() }
}

// settle records what a call's error says about the client's connection.
func (c *conn) settle(err error) {
	var ee *esdbclient.Error
	switch {
	case err == nil:
		c.connected.Store(true)
	case errors.As(err, &ee) && (ee.Code() == esdbclient.ErrorUnavailable || ee.Code() == esdbclient.ErrorCodeNotLeader):
		// The client dropped its connection and discovers on the next call.
		c.connected.Store(false)
	}
}

// close closes the client once no call uses it. Calls that come later find
// it closed: the client refuses them before touching its channel.
func (c *conn) close() error {
	c.enter.Lock()
	defer c.enter.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.client.Close()
}

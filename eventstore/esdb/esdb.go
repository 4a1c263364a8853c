// Package esdb is the EventStoreDB (KurrentDB) event store, through the
// official gRPC client github.com/EventStore/EventStore-Client-Go/v4.
//
// Each of the product's streams is an EventStoreDB stream of the same name
// behind a prefix ("job-42" is stored as "rendertrust:job-42"), and each event
// is one EventStoreDB event whose data is the event's canonical envelope,
// byte for byte, with its leaf hash in the event's metadata. EventStoreDB
// checks expected versions and keeps appends atomic per stream.
//
// EventStoreDB's commit positions are byte offsets, not 1, 2, 3 …; the
// product's log position of an event is its rank among the prefix's events
// in $all, which every reader and every restart computes the same way. Each
// Store keeps an in-memory index of those ranks, built by reading $all at
// Open and kept current by a filtered subscription to $all that resubscribes
// from its last position after a drop. See README.md for the design and its
// costs.
package esdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// DefaultStreamPrefix puts the product's streams in their own namespace
	// on the server; the connection string's streamPrefix parameter changes it.
	DefaultStreamPrefix = "rendertrust:"
	// streamPrefixParam names the connection-string parameter of the prefix.
	// It is taken out before the string reaches the client.
	streamPrefixParam = "streamPrefix"
	// appendAttemptsMax bounds how often an append is tried again after
	// another writer moved its stream between the check and the write.
	appendAttemptsMax = 16
	// followWait is how long an append waits for the live subscription to
	// bring its own events before it reads $all for them.
	followWait = 20 * time.Millisecond
	// subscriptionPoll is how often a Subscription re-reads the log while
	// the live subscription to $all is down and cannot wake it.
	subscriptionPoll = time.Second
)

// Store is the EventStoreDB event store. Its methods are safe for concurrent use.
type Store struct {
	cfg    *esdbclient.Configuration
	cur    atomic.Pointer[conn] // replaced by redial
	prefix string
	index  *index
	signal *eventstore.HeadSignal
	locks  streamLocks
	clock  clock

	redialMu sync.Mutex
	closeMu  sync.RWMutex // held for reading by appends in flight
	closed   atomic.Bool
	stop     context.CancelFunc
	follow   sync.WaitGroup
	drops    atomic.Int64 // times the live subscription to $all was dropped
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the EventStoreDB server at url, an esdb:// or
// esdb+discover:// connection string that may carry a streamPrefix parameter
// (default DefaultStreamPrefix), reads $all to number the prefix's events,
// and starts following $all. The connection's user must be allowed to read
// $all. It fails when the string is not valid or the server cannot be read.
func Open(ctx context.Context, url string) (*Store, error) {
	connString, prefix, err := splitURL(url)
	if err != nil {
		return nil, err
	}
	cfg, err := esdbclient.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("esdb: parse connection string: %w", err)
	}
	cfg.Logger = clientLog
	client, err := esdbclient.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: %w", err)
	}
	s := &Store{cfg: cfg, prefix: prefix, signal: &eventstore.HeadSignal{}}
	s.cur.Store(&conn{client: client})
	s.index = newIndex(prefix, s.signal)
	if err := s.sync(ctx); err != nil {
		s.cur.Load().close() // sync may have made a new client
		return nil, fmt.Errorf("esdb: open: %w", err)
	}
	followCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.follow.Add(1)
	go s.followAll(followCtx)
	return s, nil
}

// splitURL takes the streamPrefix parameter out of a connection string.
func splitURL(s string) (conn, prefix string, err error) {
	prefix = DefaultStreamPrefix
	base, query, hasQuery := strings.Cut(s, "?")
	if !hasQuery {
		return s, prefix, nil
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", "", fmt.Errorf("esdb: parse connection string parameters: %w", err)
	}
	for k, v := range params {
		if strings.EqualFold(k, streamPrefixParam) {
			prefix = v[0]
			delete(params, k)
		}
	}
	if prefix == "" || strings.HasPrefix(prefix, "$") {
		return "", "", fmt.Errorf("esdb: %s %q: must be non-empty and not start with $ (system streams)", streamPrefixParam, prefix)
	}
	if len(params) == 0 {
		return base, prefix, nil
	}
	return base + "?" + params.Encode(), prefix, nil
}

// clientLog passes the client's own log lines to slog at debug level: it
// reports every subscription it closes as an error.
func clientLog(level esdbclient.LogLevel, format string, args ...any) {
	slog.Debug(fmt.Sprintf(format, args...), "component", "esdb-client", "level", level)
}

// Append implements eventstore.Store. Each attempt reads the tail of $all
// (so the id and version checks see every committed event), encodes the
// envelopes for the stream's next versions and appends them with that exact
// expected revision; when another writer moved the stream in between,
// EventStoreDB refuses the write and the append looks again. When ctx ends
// it returns ctx.Err() — the append may or may not have been written, and
// repeating it with the same event ids is safe — unless the store already
// sees the events written, when it returns their positions.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	events, err := eventstore.PrepareAppend(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	unlock, err := s.locks.lock(ctx, stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer unlock()
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = eventID(e.ID)
	}
	for range appendAttemptsMax {
		r, err := s.tryAppend(ctx, stream, expected, events, ids)
		if !errors.Is(err, errStreamMoved) {
			return r, s.ctxErr(ctx, err)
		}
	}
	return eventstore.AppendResult{}, fmt.Errorf("append to %s: %d attempts: %w", stream, appendAttemptsMax, errStreamMoved)
}

// errStreamMoved says EventStoreDB refused an append's expected revision:
// another writer appended to the stream after the append looked at it.
var errStreamMoved = errors.New("another writer moved the stream")

// tryAppend makes one attempt. It fails with errStreamMoved when the attempt
// should be made again.
func (s *Store) tryAppend(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData, ids []uuid.UUID) (eventstore.AppendResult, error) {
	if err := s.sync(ctx); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	if stored := s.index.stored(ids); len(stored) > 0 {
		return duplicateResult(stream, ids, stored)
	}
	current := s.index.version(stream)
	if !expected.Allows(current) {
		return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: current}
	}
	proposed, err := s.encode(stream, current, events, ids)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	opts := esdbclient.AppendToStreamOptions{ExpectedRevision: expectedRevision(current)}
	var wr *esdbclient.WriteResult
	err = s.call(func(c *esdbclient.Client) (err error) {
		wr, err = c.AppendToStream(ctx, s.prefix+stream, opts, proposed...)
		return err
	})
	if err != nil && ctx.Err() != nil && s.indexed(ids) {
		// The caller gave up, but the write landed and a reader of this
		// store already saw it: say so rather than "maybe".
		return writtenResult(stream, ids, s.index.stored(ids))
	}
	if err != nil {
		return eventstore.AppendResult{}, appendFailed(stream, err)
	}
	if err := s.awaitIndexed(ctx, ids, wr); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: written, then: %w", stream, err)
	}
	return writtenResult(stream, ids, s.index.stored(ids))
}

// awaitIndexed returns once the index holds every event of a write: usually
// the live subscription brings them within moments; after followWait, or for
// a success without a position (an idempotent repeat, on some servers), it
// reads $all. It waits for the ids, not for the reported position, which may
// be that of the write's first event.
func (s *Store) awaitIndexed(ctx context.Context, ids []uuid.UUID, wr *esdbclient.WriteResult) error {
	if wr.CommitPosition == 0 {
		return s.sync(ctx)
	}
	timeout := time.NewTimer(followWait)
	defer timeout.Stop()
	for {
		_, advanced := s.signal.Wait()
		if s.indexed(ids) {
			return nil
		}
		select {
		case <-advanced:
		case <-timeout.C:
			return s.sync(ctx)
		case <-ctx.Done():
			if s.indexed(ids) {
				return nil
			}
			return ctx.Err()
		}
	}
}

// indexed reports whether the index holds every one of ids.
func (s *Store) indexed(ids []uuid.UUID) bool { return len(s.index.stored(ids)) == len(ids) }

// appendFailed sorts a refused append into errStreamMoved, an *InvalidError
// (the server's size limit) or an operating error.
func appendFailed(stream string, err error) error {
	var ee *esdbclient.Error
	if errors.As(err, &ee) && ee.Code() == esdbclient.ErrorCodeWrongExpectedVersion {
		return errStreamMoved
	}
	if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == codes.InvalidArgument {
		return &eventstore.InvalidError{Field: "events", Reason: "refused by EventStoreDB: " + st.Message()}
	}
	return fmt.Errorf("append to %s: %w", stream, err)
}

// expectedRevision maps the stream's 1-based version to the 0-based
// revision EventStoreDB expects its last event to have.
func expectedRevision(version uint64) esdbclient.ExpectedRevision {
	if version == 0 {
		return esdbclient.NoStream{}
	}
	return esdbclient.Revision(version - 1)
}

// duplicateResult accepts a re-append only when every event is already this
// stream's, at consecutive versions, in the same order, and returns where
// they were first written.
func duplicateResult(stream string, ids []uuid.UUID, stored map[uuid.UUID]storedAt) (eventstore.AppendResult, error) {
	first, ok := stored[ids[0]]
	for i, id := range ids {
		at, found := stored[id]
		if !ok || !found || at.stream != stream || at.version != first.version+uint64(i) {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: event %s: %w", stream, id, eventstore.ErrDuplicateEventID)
		}
	}
	last := stored[ids[len(ids)-1]]
	return eventstore.AppendResult{FirstPosition: first.position, LastPosition: last.position, NextVersion: last.version, Duplicate: true}, nil
}

// writtenResult finds the events an append just wrote in the index.
func writtenResult(stream string, ids []uuid.UUID, stored map[uuid.UUID]storedAt) (eventstore.AppendResult, error) {
	r, err := duplicateResult(stream, ids, stored)
	if err != nil {
		return r, fmt.Errorf("append to %s: EventStoreDB acknowledged the events but $all does not hold them in order: %w", stream, err)
	}
	r.Duplicate = false
	return r, nil
}

// Head implements eventstore.Store: the number of the prefix's events in
// $all when it was called.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	if err := s.sync(ctx); err != nil {
		return 0, s.ctxErr(ctx, fmt.Errorf("read head: %w", err))
	}
	return s.index.head(), nil
}

// Subscribe implements eventstore.Store. The live subscription to $all
// wakes it; it also polls, for while that subscription is re-established.
func (s *Store) Subscribe(ctx context.Context, from uint64) *eventstore.Subscription {
	return eventstore.NewSubscription(ctx, s.ReadAll, s.signal, from, subscriptionPoll)
}

// Close implements eventstore.Store: appends in flight finish, then the
// live subscription, then the connection once no read uses it.
func (s *Store) Close() error {
	s.closeMu.Lock()
	already := s.closed.Swap(true)
	s.closeMu.Unlock()
	if already {
		return nil
	}
	s.stop()
	s.follow.Wait()
	s.redialMu.Lock()
	defer s.redialMu.Unlock()
	return s.cur.Load().close()
}

// call runs f on the client in use, which it holds for f's duration
// (conn.acquire), so the client is not closed under f. When f fails because
// the client closed itself, it makes a new one.
func (s *Store) call(f func(*esdbclient.Client) error) error {
	c := s.cur.Load()
	release := c.acquire()
	err := f(c.client)
	release(err)
	if err != nil {
		s.redial(c, err)
	}
	return err
}

// redial replaces c, which failed with err, by a new client when c has
// closed itself: the v4 client gives up for good after one failed discovery
// (a server down for a second or two), and the store must outlive that.
// Calls still inside c keep it until they end; then it is closed.
func (s *Store) redial(c *conn, err error) {
	var ee *esdbclient.Error
	if !errors.As(err, &ee) || ee.Code() != esdbclient.ErrorCodeConnectionClosed {
		return
	}
	s.redialMu.Lock()
	defer s.redialMu.Unlock()
	if s.closed.Load() || s.cur.Load() != c {
		return
	}
	fresh, err := esdbclient.NewClient(s.cfg)
	if err != nil {
		return
	}
	s.cur.Store(&conn{client: fresh})
	// Not waited for: a call in flight on c ends with its context, and
	// the store need not wait for it to serve on the new client.
	go c.close()
	slog.Warn("esdb: the client gave up connecting; made a new one")
}

// sync brings the index up to the end of $all (index.sync) on the client in use.
func (s *Store) sync(ctx context.Context) error {
	return s.call(func(c *esdbclient.Client) error { return s.index.sync(ctx, c) })
}

// ctxErr returns ctx's error in place of err when ctx has ended, so callers
// can tell a cancelled call (errors.Is context.Canceled) from a failure.
func (s *Store) ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// eventID maps an event id to EventStoreDB's UUID event id: the id itself
// when it is a UUID in canonical form, else a UUIDv8 derived from it.
func eventID(id string) uuid.UUID {
	if u, err := uuid.Parse(id); err == nil && u.String() == id {
		return u
	}
	return uuid.MustParse(eventstore.DeriveEventID("esdb-event-id", id))
}

// clock hands out recorded-at times that never run backwards in this store.
type clock struct {
	mu   sync.Mutex
	last time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := time.Now().UTC().Truncate(time.Microsecond)
	if at.Before(c.last) {
		at = c.last
	}
	c.last = at
	return at
}

// streamLocks lets one append per stream at a time run in this process, so
// appends of one store to one stream do not refuse each other; appends from
// other processes are still settled by EventStoreDB's expected revision.
type streamLocks struct {
	mu    sync.Mutex
	locks map[string]*streamLock
}

type streamLock struct {
	held  chan struct{} // holds a token while the lock is taken
	users int           // holders and waiters; the entry goes when it drops to 0
}

// lock waits for stream's lock or for ctx to end, and returns its unlock.
func (l *streamLocks) lock(ctx context.Context, stream string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*streamLock{}
	}
	sl := l.locks[stream]
	if sl == nil {
		sl = &streamLock{held: make(chan struct{}, 1)}
		l.locks[stream] = sl
	}
	sl.users++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if sl.users--; sl.users == 0 {
			delete(l.locks, stream)
		}
		l.mu.Unlock()
	}
	select {
	case sl.held <- struct{}{}:
		return func() { <-sl.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

package eventstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Backend is the storage a Committer writes through; each eventstore backend
// implements it on its own database.
//
// A batch talks to the database twice: Begin reads, under the tail lock,
// everything the planner needs, and Tx.Commit writes what it decided. On a
// networked database that is two round trips while the tail lock is held.
type Backend interface {
	// Begin starts a write transaction, takes the log's tail lock where other
	// processes may append, and reads under it the batch's Snapshot: the head,
	// the versions of streams and where ids are stored. On error nothing is
	// held and Tx is nil.
	Begin(ctx context.Context, streams, ids []string) (Tx, Snapshot, error)
}

// Snapshot is what the log holds for one batch, read under the tail lock.
type Snapshot struct {
	// Head is the last committed position.
	Head uint64
	// Versions holds the last version of each asked stream that has events;
	// streams without events are absent.
	Versions map[string]uint64
	// IDs holds where each asked id is stored; ids not stored are absent.
	IDs map[string]StoredRef
}

// Tx is one write transaction on the log, holding the tail lock.
type Tx interface {
	// Commit stores rows (in position order), moves the tail to head and
	// makes everything durable. On error nothing is written and the
	// transaction is over.
	Commit(ctx context.Context, rows []Row, head uint64) error
	// Rollback abandons the transaction; it is a no-op once it is over.
	Rollback() error
}

// StoredRef says where a stored event is.
type StoredRef struct {
	Stream   string
	Version  uint64
	Position uint64
}

// Row is one event as a backend stores it.
type Row struct {
	Position   uint64
	Stream     string
	Version    uint64
	ID         string
	Type       string
	RecordedAt time.Time
	Bytes      []byte
	LeafHash   [32]byte
}

// Group commit limits.
const (
	// batchEventsMax bounds the events one group-commit transaction writes.
	batchEventsMax = 8192
	// pendingAppendsMax bounds appends queued for the writer.
	pendingAppendsMax = 4096
)

// Committer serializes appends onto one writer goroutine and group-commits
// them: every append waiting when a transaction starts shares it and its one
// fsync. Each append (a single-stream Append or a whole AppendMulti) still
// succeeds or fails on its own.
type Committer struct {
	backend Backend
	signal  *HeadSignal
	queue   chan *appendRequest
	done    chan struct{}
	closeMu sync.RWMutex
	closed  bool
	lastAt  time.Time
}

// appendRequest is one Append (one part) or one AppendMulti (its parts).
type appendRequest struct {
	ctx    context.Context
	parts  []StreamAppend
	events int  // in all parts
	multi  bool // an AppendMulti: errors name "parts[i]…"
	reply  chan appendReply
}

type appendReply struct {
	results []AppendResult // one per part
	err     error
}

// NewCommitter starts the writer goroutine; signal is advanced after every
// commit. Close stops it.
func NewCommitter(backend Backend, signal *HeadSignal) *Committer {
	c := &Committer{
		backend: backend,
		signal:  signal,
		queue:   make(chan *appendRequest, pendingAppendsMax),
		done:    make(chan struct{}),
	}
	go c.run()
	return c
}

// Append validates and canonicalizes the events in the caller's goroutine,
// then waits for the writer to commit them. It implements Store.Append.
// If ctx ends first it returns ctx.Err(): the append may or may not have been
// committed, and repeating it with the same event ids is safe.
func (c *Committer) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error) {
	events, err := prepareAppend(stream, expected, events)
	if err != nil {
		return AppendResult{}, err
	}
	results, err := c.submit(ctx, false, []StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	if err != nil {
		return AppendResult{}, err
	}
	return results[0], nil
}

// AppendMulti validates and canonicalizes every part in the caller's
// goroutine, then waits for the writer to commit them all in one
// transaction. It implements MultiAppender; ctx as for Append.
func (c *Committer) AppendMulti(ctx context.Context, parts ...StreamAppend) ([]AppendResult, error) {
	parts, err := prepareMulti(parts)
	if err != nil {
		return nil, err
	}
	return c.submit(ctx, true, parts)
}

// submit queues prepared parts for the writer and waits for its answer.
func (c *Committer) submit(ctx context.Context, multi bool, parts []StreamAppend) ([]AppendResult, error) {
	req := &appendRequest{ctx: ctx, parts: parts, multi: multi, reply: make(chan appendReply, 1)}
	for _, p := range parts {
		req.events += len(p.Events)
	}
	c.closeMu.RLock()
	if c.closed {
		c.closeMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case c.queue <- req:
		c.closeMu.RUnlock()
	case <-ctx.Done():
		c.closeMu.RUnlock()
		return nil, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.results, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops taking appends, commits those already queued and stops the writer.
func (c *Committer) Close() {
	c.closeMu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.closeMu.Unlock()
	<-c.done
}

func (c *Committer) run() {
	defer close(c.done)
	for first := range c.queue {
		batch := c.gather(first)
		c.commitBatch(batch)
	}
}

// gather takes first plus every append already waiting, up to batchEventsMax events.
func (c *Committer) gather(first *appendRequest) []*appendRequest {
	batch := []*appendRequest{first}
	n := first.events
	for n < batchEventsMax {
		select {
		case req, ok := <-c.queue:
			if !ok {
				return batch
			}
			batch = append(batch, req)
			n += req.events
		default:
			return batch
		}
	}
	return batch
}

// commitBatch writes the batch in one transaction. Appends refused by their
// preconditions are answered without touching the transaction; a failure of
// the transaction itself fails every append in it, and none is written.
func (c *Committer) commitBatch(batch []*appendRequest) {
	replies := make([]appendReply, len(batch))
	head, err := c.writeBatch(batch, replies)
	for i, req := range batch {
		if err != nil && replies[i].err == nil {
			replies[i] = appendReply{err: err}
		}
		req.reply <- replies[i]
	}
	if err == nil {
		c.signal.Advance(head)
	}
}

// writeBatch plans the batch on the Snapshot Begin read and commits the
// rows of the appends it accepted, if any.
func (c *Committer) writeBatch(batch []*appendRequest, replies []appendReply) (uint64, error) {
	ctx := context.Background() // the batch outlives any one caller's context
	streams, ids := batchKeys(batch)
	// Every stream's version is read each time, with the head in the same
	// round trip: a cache could only be trusted after the head was known.
	tx, snap, err := c.backend.Begin(ctx, streams, ids)
	if err != nil {
		return 0, fmt.Errorf("begin append: %w", err)
	}
	defer tx.Rollback()
	p := newPlanner(c.now(), snap)
	for i, req := range batch {
		if req.ctx.Err() != nil {
			replies[i] = appendReply{err: req.ctx.Err()}
			continue
		}
		replies[i].results, replies[i].err = p.plan(req)
	}
	if p.head == snap.Head {
		return snap.Head, nil
	}
	if err := tx.Commit(ctx, p.rows, p.head); err != nil {
		return 0, fmt.Errorf("commit events: %w", err)
	}
	return p.head, nil
}

// now returns the batch's recorded-at time, never earlier than the last one
// this writer used, so recorded times do not run backwards along positions.
func (c *Committer) now() time.Time {
	at := time.Now().UTC().Truncate(time.Microsecond)
	if at.Before(c.lastAt) {
		at = c.lastAt
	}
	c.lastAt = at
	return at
}

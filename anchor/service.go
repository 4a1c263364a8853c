package anchor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// anchoredSizeTTL is how stale AnchoredSize may be.
const anchoredSizeTTL = time.Second

// anchoredSizeTimeout bounds AnchoredSize's refresh query.
const anchoredSizeTimeout = 2 * time.Second

// CheckEntryStored is the check Service.Verify adds to proof's: the event
// store returns the entry at its logged position, intact.
const CheckEntryStored = "entry_stored"

// Sentinel errors of the Service; test with errors.Is. The application
// errors are *domain.Error values with stable codes.
var (
	// ErrEntryNotFound: no ledger entry has that id (or the audit log has
	// not read it yet, which takes milliseconds).
	ErrEntryNotFound = domain.Errorf(domain.CodeNotFound, "ledger entry not found")
	// ErrSizeNotAnchored: a consistency proof was asked for a tree size
	// that was never anchored.
	ErrSizeNotAnchored = domain.Errorf(domain.CodeNotFound, "tree size not anchored")
	// ErrInvalidSizes: a consistency proof needs 0 < from ≤ to.
	ErrInvalidSizes = domain.Errorf(domain.CodeInvalid, "consistency proof needs 0 < from ≤ to")
	// ErrNotAnchored is matched by every *NotAnchoredError.
	ErrNotAnchored = errors.New("entry not anchored yet")
	// ErrNoChain: Verify was called on a Service configured without a chain
	// or without the contract to trust on it.
	ErrNoChain = domain.Errorf(domain.CodeUnavailable, "no chain is configured to verify against")
)

// NotAnchoredError says an entry is in the audit log but no confirmed
// anchor covers it yet, and about how long that should take. It matches
// ErrNotAnchored.
type NotAnchoredError struct {
	EntryID      string
	Position     uint64
	AnchoredSize uint64        // the largest anchored tree size; the entry needs one ≥ Position
	ExpectedWait time.Duration // estimated time until an anchor covering it is recorded
}

func (e *NotAnchoredError) Error() string {
	return fmt.Sprintf("entry %s (position %d) is not anchored yet: anchored size is %d; expected within about %s",
		e.EntryID, e.Position, e.AnchoredSize, e.ExpectedWait.Round(time.Second))
}

// Is makes errors.Is(err, ErrNotAnchored) true.
func (e *NotAnchoredError) Is(target error) bool { return target == ErrNotAnchored }

// Unwrap returns the application error with domain.CodeNotAnchored, so that
// domain.ErrorCode and ErrorMessage treat e as a client-safe answer.
func (e *NotAnchoredError) Unwrap() error {
	return &domain.Error{Code: domain.CodeNotAnchored, Message: "entry not anchored yet"}
}

// RetryAfterSeconds returns ExpectedWait in whole seconds, at least 1, for
// a Retry-After answer.
func (e *NotAnchoredError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.ExpectedWait.Seconds())))
}

// EventReader reads the event log; eventstore.Store implements it.
type EventReader interface {
	ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error)
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Chain reads anchors for Verify, VerifyConsistency and Audit; nil
	// makes them fail with ErrNoChain. For a chain other than the worker's,
	// use ethchain.Dial.
	Chain proof.Chain
	// Trust is the chain id and contract Verify and VerifyConsistency
	// accept anchors from: the server's own configured contract, never
	// the one a proof names. A zero contract makes them fail with
	// ErrNoChain.
	Trust proof.Trust
	// ExpectedWait estimates how long until an anchor covers position
	// (Worker.ExpectedWait); nil estimates Interval.
	ExpectedWait func(position uint64) time.Duration
	// Interval is the worker's anchor interval, for the estimate without
	// ExpectedWait; 0 means DefaultInterval.
	Interval time.Duration
}

// Service answers proofs from the audit log's tables and the event store.
// It reads only committed rows, so it may run in a process without the Log
// or the Worker. It is safe for concurrent use.
type Service struct {
	db     *sqldb.DB
	events EventReader
	nodes  *NodeStore
	cfg    ServiceConfig

	mu         sync.Mutex // guards anchored and anchoredAt
	anchored   uint64
	anchoredAt time.Time
}

// NewService returns a Service over the audit log in db (its tables made
// by Migrate or OpenLog) and the event store events.
func NewService(db *sqldb.DB, events EventReader, cfg ServiceConfig) *Service {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	return &Service{db: db, events: events, nodes: NewNodeStore(db), cfg: cfg}
}

// AnchoredSize returns the largest tree size with a confirmed, recorded
// anchor (0 before the first): every entry at a position up to it is
// anchored. It reads the database at most once per anchoredSizeTTL and
// returns the last size it read if that fails, so it cannot fail.
func (s *Service) AnchoredSize() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.anchoredAt) < anchoredSizeTTL {
		return s.anchored
	}
	ctx, cancel := context.WithTimeout(context.Background(), anchoredSizeTimeout)
	defer cancel()
	if size, err := s.LoadAnchoredSize(ctx); err == nil {
		s.anchored, s.anchoredAt = size, time.Now()
	}
	return s.anchored
}

// LoadAnchoredSize reads the largest anchored tree size from the database,
// as AnchoredSize does but fresh. It returns the database's error.
func (s *Service) LoadAnchoredSize(ctx context.Context) (uint64, error) {
	r, err := latestRecord(ctx, s.db)
	if errors.Is(err, errNoRow) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return r.TreeSize, nil
}

// EntryStream returns the stream of the entry with id entryID, for access
// checks. It returns an error wrapping ErrEntryNotFound for an unknown id,
// the event store's error (a *eventstore.CorruptionError for a missing or
// altered entry), or the database's error.
func (s *Service) EntryStream(ctx context.Context, entryID string) (string, error) {
	lf, err := leafByID(ctx, s.db, entryID)
	if errors.Is(err, errNoRow) {
		return "", fmt.Errorf("entry %q: %w", entryID, ErrEntryNotFound)
	}
	if err != nil {
		return "", err
	}
	stored := s.readEntry(ctx, lf)
	if stored.err != nil {
		return "", stored.err
	}
	return stored.stream, nil
}

// Proof returns the inclusion proof of the entry with id entryID against
// the first confirmed anchor covering it. It returns an error wrapping
// ErrEntryNotFound for an unknown id, a *NotAnchoredError before an anchor
// covers the entry, an *eventstore.CorruptionError or *DivergedError if the
// stored entry or tree no longer matches the log (Verify says exactly
// what), or the database's error.
func (s *Service) Proof(ctx context.Context, entryID string) (*proof.Inclusion, error) {
	lf, rec, err := s.locate(ctx, entryID)
	if err != nil {
		return nil, err
	}
	stored := s.readEntry(ctx, lf)
	if stored.err != nil {
		return nil, stored.err
	}
	if merkle.HashLeaf(stored.bytes) != lf.Hash {
		return nil, &eventstore.CorruptionError{Position: lf.Position, Reason: "the stored entry's bytes no longer match the logged leaf hash"}
	}
	doc, treeRoot, err := s.document(ctx, entryID, lf, rec, stored.bytes)
	if err != nil {
		return nil, err
	}
	if treeRoot != rec.Root {
		return nil, &DivergedError{Reason: fmt.Sprintf("the stored tree's root at size %d is %x, the anchor record says %x", rec.TreeSize, treeRoot, rec.Root)}
	}
	return doc, nil
}

// Verify builds the entry's proof as Proof does and checks all of it:
// the entry's bytes in the event store, the Merkle path, and the anchor on
// the chain (proof.VerifyInclusion). A tampered entry or log is a Result
// with Verified false naming the failed checks, not an error. It returns
// ErrNoChain, an error wrapping ErrEntryNotFound, a *NotAnchoredError, or
// the database's or chain's error.
func (s *Service) Verify(ctx context.Context, entryID string) (*proof.Result, error) {
	if s.cfg.Chain == nil || s.cfg.Trust.Contract == (proof.Address{}) {
		return nil, ErrNoChain
	}
	lf, rec, err := s.locate(ctx, entryID)
	if err != nil {
		return nil, err
	}
	stored := s.readEntry(ctx, lf)
	var entry []byte
	if stored.err == nil {
		entry = stored.bytes
	}
	doc, _, err := s.document(ctx, entryID, lf, rec, entry)
	if err != nil {
		return nil, err
	}
	res, err := proof.VerifyInclusion(ctx, s.cfg.Chain, s.cfg.Trust, doc)
	if err != nil {
		return nil, fmt.Errorf("verify entry %s: %w", entryID, err)
	}
	res.AddErr(CheckEntryStored, stored.err)
	return res, nil
}

// Consistency returns the consistency proof from the tree at size from to
// the tree at size to, both anchored. It returns an error wrapping
// ErrInvalidSizes or ErrSizeNotAnchored, or the database's error.
func (s *Service) Consistency(ctx context.Context, from, to uint64) (*proof.Consistency, error) {
	if from == 0 || from > to {
		return nil, fmt.Errorf("consistency from %d to %d: %w", from, to, ErrInvalidSizes)
	}
	r1, err := recordAt(ctx, s.db, from)
	if err != nil {
		return nil, sizeErr(from, err)
	}
	r2, err := recordAt(ctx, s.db, to)
	if err != nil {
		return nil, sizeErr(to, err)
	}
	tree, err := merkle.Open(ctx, s.nodes, to)
	if err != nil {
		return nil, fmt.Errorf("consistency from %d to %d: %w", from, to, err)
	}
	path, err := tree.ConsistencyProof(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("consistency from %d to %d: %w", from, to, err)
	}
	return &proof.Consistency{
		Alg: proof.Alg, TreeSize1: from, TreeSize2: to, Root1: r1.Root, Root2: r2.Root,
		ConsistencyPath: proof.Hashes(path), Anchor1: r1.Anchor, Anchor2: r2.Anchor,
	}, nil
}

// VerifyConsistency builds the consistency proof as Consistency does and
// checks it and both anchors against the chain (proof.VerifyConsistency).
// Errors as for Consistency, plus ErrNoChain and the chain's error.
func (s *Service) VerifyConsistency(ctx context.Context, from, to uint64) (*proof.Result, error) {
	if s.cfg.Chain == nil || s.cfg.Trust.Contract == (proof.Address{}) {
		return nil, ErrNoChain
	}
	doc, err := s.Consistency(ctx, from, to)
	if err != nil {
		return nil, err
	}
	res, err := proof.VerifyConsistency(ctx, s.cfg.Chain, s.cfg.Trust, doc)
	if err != nil {
		return nil, fmt.Errorf("verify consistency from %d to %d: %w", from, to, err)
	}
	return res, nil
}

// locate finds the entry's leaf and the newest anchor record, if it covers the entry.
func (s *Service) locate(ctx context.Context, entryID string) (*leaf, *record, error) {
	lf, err := leafByID(ctx, s.db, entryID)
	if errors.Is(err, errNoRow) {
		return nil, nil, fmt.Errorf("entry %q: %w", entryID, ErrEntryNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	// The newest anchor, not the first that covered the entry: after a
	// reorganisation deeper than the confirmations, the worker anchors the
	// newest size again, so the newest record is the one the chain keeps.
	rec, err := latestRecord(ctx, s.db)
	if err == nil && rec.TreeSize < lf.Position {
		err = errNoRow
	}
	if errors.Is(err, errNoRow) {
		anchored, err := s.LoadAnchoredSize(ctx)
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, &NotAnchoredError{EntryID: entryID, Position: lf.Position, AnchoredSize: anchored, ExpectedWait: s.expectedWait(lf.Position)}
	}
	if err != nil {
		return nil, nil, err
	}
	return lf, rec, nil
}

func (s *Service) expectedWait(position uint64) time.Duration {
	if s.cfg.ExpectedWait != nil {
		return s.cfg.ExpectedWait(position)
	}
	return s.cfg.Interval
}

// storedEntry is what the event store holds at a logged position.
type storedEntry struct {
	stream string
	bytes  []byte
	err    error // why the entry could not be read intact
}

// readEntry reads the entry at lf's position, reporting a missing or
// corrupt entry, or another event in its place, in err.
func (s *Service) readEntry(ctx context.Context, lf *leaf) storedEntry {
	evs, err := s.events.ReadAll(ctx, lf.Position, 1)
	switch {
	case err != nil:
		return storedEntry{err: err}
	case len(evs) == 0 || evs[0].Position != lf.Position:
		return storedEntry{err: &eventstore.CorruptionError{Position: lf.Position, Reason: "missing from the event store"}}
	case evs[0].ID != lf.EventID:
		return storedEntry{bytes: evs[0].Bytes, err: &eventstore.CorruptionError{Position: lf.Position,
			Reason: fmt.Sprintf("the event store holds event %s there, the audit log recorded %s", evs[0].ID, lf.EventID)}}
	}
	return storedEntry{stream: evs[0].Stream, bytes: evs[0].Bytes}
}

// document builds the proof of lf against rec with entry as the entry's
// bytes, and returns the stored tree's root at the record's size. The
// leaf hash is the one the log recorded, never recomputed, so that a
// verifier sees any change to the bytes.
func (s *Service) document(ctx context.Context, entryID string, lf *leaf, rec *record, entry []byte) (*proof.Inclusion, [merkle.HashSize]byte, error) {
	var root [merkle.HashSize]byte
	tree, err := merkle.Open(ctx, s.nodes, rec.TreeSize)
	if err != nil {
		return nil, root, fmt.Errorf("proof of %s at size %d: %w", entryID, rec.TreeSize, err)
	}
	path, err := tree.InclusionProof(ctx, lf.Position-1, rec.TreeSize)
	if err != nil {
		return nil, root, fmt.Errorf("proof of %s at size %d: %w", entryID, rec.TreeSize, err)
	}
	if root, err = tree.Root(ctx, rec.TreeSize); err != nil {
		return nil, root, fmt.Errorf("proof of %s at size %d: %w", entryID, rec.TreeSize, err)
	}
	if entry == nil {
		entry = []byte{}
	}
	return &proof.Inclusion{
		Alg: proof.Alg, EntryID: entryID, Position: lf.Position, LeafIndex: lf.Position - 1,
		Entry: entry, LeafHash: lf.Hash, TreeSize: rec.TreeSize, AuditPath: proof.Hashes(path),
		Root: rec.Root, Anchor: rec.Anchor,
	}, root, nil
}

func sizeErr(size uint64, err error) error {
	if errors.Is(err, errNoRow) {
		return fmt.Errorf("tree size %d: %w", size, ErrSizeNotAnchored)
	}
	return err
}

package postgres

import (
	"context"
	"fmt"

	"github.com/rendertrust/rendertrust/eventstore"
)

// filteredScanMax bounds the positions one filtered read looks at, so a
// read far behind the head with few matching events stays one short scan.
const filteredScanMax = 50_000

var _ eventstore.TypeSubscriber = (*Store)(nil)

// SubscribeTypes implements eventstore.TypeSubscriber: PostgreSQL filters
// the rows by their type column, so the events of other types are neither
// sent nor decoded.
func (s *Store) SubscribeTypes(ctx context.Context, from uint64, types ...string) *eventstore.Subscription {
	return eventstore.NewFilteredSubscription(ctx, s.readTypes, s.signal, from, subscriptionPoll, types...)
}

// readTypesSQL reads the committed tail and, in the same snapshot, the
// events of the types at or after $1 up to it (and within the scan
// window). The tail comes back on every row, or on one row of NULLs when no
// event matches. Every position up to the tail is committed: appends lock
// the tail row and move it in the transaction that inserts their events.
const readTypesSQL = `SELECT e.position, e.stream, e.version, e.bytes, e.leaf_hash, t.position
	FROM log_tail t LEFT JOIN LATERAL (
		SELECT position, stream, version, bytes, leaf_hash FROM events
		WHERE position >= $1 AND position <= LEAST(t.position, $1 + $4 - 1) AND type = ANY($2)
		ORDER BY position LIMIT $3) e ON TRUE`

// readTypes is the store's eventstore.FilteredReadFunc.
func (s *Store) readTypes(ctx context.Context, from uint64, max int, types []string) ([]eventstore.RecordedEvent, uint64, error) {
	from, max = eventstore.ClampFrom(from), eventstore.ClampMax(max)
	rows, err := s.pool.Query(ctx, readTypesSQL, int64(from), types, max, s.scanMax)
	if err != nil {
		return nil, 0, fmt.Errorf("read log from %d (types %v): %w", from, types, err)
	}
	defer rows.Close()
	var (
		events []eventstore.RecordedEvent
		tail   int64
	)
	for rows.Next() {
		var (
			position, version *int64
			stream            *string
			b, hash           []byte
		)
		if err := rows.Scan(&position, &stream, &version, &b, &hash, &tail); err != nil {
			return nil, 0, fmt.Errorf("scan event: %w", err)
		}
		if position == nil {
			break // no event of the types up to the tail
		}
		e, err := eventstore.DecodeStored(uint64(*position), *stream, uint64(*version), b, hash)
		if err != nil {
			return nil, 0, err
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read log from %d (types %v): %w", from, types, err)
	}
	if err := eventstore.CheckFiltered(from, types, events); err != nil {
		return nil, 0, err
	}
	return events, throughOf(from, max, s.scanMax, uint64(tail), events), nil
}

// throughOf is the last position a filtered read from from looked at: its
// last event when it returned max of them (more may follow), else the end
// of its window (the tail, or the scan bound scanMax before it).
func throughOf(from uint64, max, scanMax int, tail uint64, events []eventstore.RecordedEvent) uint64 {
	if len(events) == max {
		return events[len(events)-1].Position
	}
	return min(tail, from+uint64(scanMax)-1)
}

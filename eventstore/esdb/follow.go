package esdb

import (
	"context"
	"errors"
	"log/slog"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

const (
	// resubscribeDelayMin and resubscribeDelayMax bound the wait before the
	// live subscription to $all is made again after a drop; the wait doubles
	// with each drop that delivered nothing.
	resubscribeDelayMin = 50 * time.Millisecond
	resubscribeDelayMax = 5 * time.Second
)

// followAll keeps a subscription to $all, filtered on the server to the
// prefix's streams, feeding the index (which wakes subscribers) until ctx
// ends. After a drop it subscribes again from the last position the index
// has examined, so nothing is missed and nothing is indexed twice.
func (s *Store) followAll(ctx context.Context) {
	defer s.follow.Done()
	delay := resubscribeDelayMin
	for {
		progressed, err := s.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.drops.Add(1)
		if progressed {
			delay = resubscribeDelayMin
		}
		slog.Warn("esdb: subscription to $all dropped; subscribing again", "err", err, "after", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(2*delay, resubscribeDelayMax)
	}
}

// followOnce subscribes once and follows until the subscription drops;
// progressed says it delivered anything.
func (s *Store) followOnce(ctx context.Context) (progressed bool, err error) {
	var sub *esdbclient.Subscription
	// Receiving from the subscription does not go through the client's
	// channel (conn), so only the call that makes it holds the client.
	err = s.call(func(c *esdbclient.Client) (err error) {
		sub, err = c.SubscribeToAll(ctx, esdbclient.SubscribeToAllOptions{
			From:   s.index.resumeFrom(),
			Filter: &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Prefixes: []string{s.prefix}},
		})
		return err
	})
	if err != nil {
		return false, err
	}
	defer sub.Close()
	for {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil && ev.EventAppeared.Event != nil:
			s.index.observe([]*esdbclient.RecordedEvent{ev.EventAppeared.Event})
			progressed = true
		case ev.SubscriptionDropped != nil:
			if ev.SubscriptionDropped.Error == nil {
				return progressed, errors.New("dropped without a reason")
			}
			return progressed, ev.SubscriptionDropped.Error
		}
	}
}

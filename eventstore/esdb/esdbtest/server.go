// Package esdbtest is an in-process gRPC server that speaks EventStoreDB's
// client protocol, for testing eventstore/esdb through the real
// EventStore-Client-Go v4 client on a machine where no EventStoreDB can run.
//
// It is NOT EventStoreDB. It implements, from the client module's own
// generated service definitions, what that client calls: Streams.Append,
// Streams.Read (a stream or $all, forwards and backwards, with stream and
// event-type filters, and catch-up subscriptions to a stream or to $all), the
// ServerFeatures and Gossip calls it makes while connecting. It keeps its log
// in memory, has no authentication, TLS, deletion, persistent subscriptions
// or projections, and answers every other call with Unimplemented. See
// eventstore/esdb/README.md for exactly what it covers.
package esdbtest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	gossipapi "github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	featuresapi "github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	streamsapi "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

const (
	// MaxAppendSizeBytes is the default of EventStoreDB's MaxAppendSize: the
	// most data one append may carry.
	MaxAppendSizeBytes = 1 << 20
	// messageBytesMax bounds one gRPC message either way.
	messageBytesMax = 17 << 20
	// pingIntervalMin lets the client's keep-alive pings (every 10 s by
	// default) through; gRPC-Go's default policy would hang up on them.
	pingIntervalMin = time.Second
)

// Server is a running in-process server. Its methods are safe for concurrent use.
type Server struct {
	log  *eventLog
	addr string

	mu       sync.Mutex
	grpc     *grpc.Server
	stopping chan struct{} // closed when the current gRPC server stops
	closed   bool
}

// Start starts a server listening on addr ("127.0.0.1:0" picks a free port).
func Start(addr string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("esdbtest: listen on %s: %w", addr, err)
	}
	s := &Server{log: newLog(), addr: lis.Addr().String()}
	s.serve(lis)
	return s, nil
}

// MustStart starts a server on a free loopback port and stops it when tb ends.
func MustStart(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// serve starts a gRPC server on lis; s.mu must be held (or s not yet shared).
func (s *Server) serve(lis net.Listener) {
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(messageBytesMax),
		grpc.MaxSendMsgSize(messageBytesMax),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: pingIntervalMin, PermitWithoutStream: true}),
	)
	stopping := make(chan struct{})
	streamsapi.RegisterStreamsServer(g, &streams{log: s.log, stopping: stopping})
	featuresapi.RegisterServerFeaturesServer(g, features{})
	gossipapi.RegisterGossipServer(g, &gossip{addr: s.addr})
	s.grpc, s.stopping = g, stopping
	go g.Serve(lis)
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// URL returns the connection string for the server: plain text, single node.
func (s *Server) URL() string { return "esdb://" + s.addr + "?tls=false" }

// Close stops the server, ending every call and connection.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.stop()
	}
}

// stop ends the current gRPC server; s.mu must be held.
func (s *Server) stop() {
	close(s.stopping)
	s.grpc.Stop()
}

// Restart drops every connection and call, as a server restart or a network
// failure would, stays down for down (refusing connections), and listens
// again on the same address with the same data.
func (s *Server) Restart(down time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("esdbtest: restart of a closed server")
	}
	s.stop()
	time.Sleep(down)
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("esdbtest: listen again on %s: %w", s.addr, err)
	}
	s.serve(lis)
	return nil
}

// Tamper flips one bit in the stored data of stream's event at revision
// (0-based), as a disk or an operator might, behind every client's back.
func (s *Server) Tamper(stream string, revision uint64) error {
	return s.log.tamper(stream, revision)
}

// Len returns how many events $all holds, system events included.
func (s *Server) Len() int { return s.log.length("") }

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
)

// shutdownTimeout bounds how long in-flight requests may finish at shutdown.
const shutdownTimeout = 15 * time.Second

func newServeCommand() *cobra.Command {
	m := &Main{Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API server",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			defer m.Close()
			if err := m.Run(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			return nil
		},
	}
	m.Config.bindFlags(cmd.Flags())
	return cmd
}

// Main owns the server's configuration, stores and listeners.
type Main struct {
	Config Config
	Log    *slog.Logger

	Store    eventstore.Store
	listener net.Listener
	server   *http.Server
}

// Run opens the stores and starts serving; it returns once the server is
// listening (Addr reports where).
func (m *Main) Run(ctx context.Context) error {
	store, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	m.Store = store
	m.listener, err = net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	m.server = &http.Server{Handler: m.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.server.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("serve", "err", err)
		}
	}()
	m.Log.Info("serving", "addr", m.Addr(), "dev", m.Config.Dev)
	return nil
}

// Addr returns the address the server listens on.
func (m *Main) Addr() string { return m.listener.Addr().String() }

func (m *Main) openStore(ctx context.Context) (eventstore.Store, error) {
	if m.Config.DatabaseURL != "" {
		return postgres.Open(ctx, m.Config.DatabaseURL)
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return sqlite.Open(ctx, m.Config.eventsPath())
}

func (m *Main) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Store.Head(r.Context()); err != nil {
			http.Error(w, "event store unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// Close stops serving, letting in-flight requests finish, then closes the stores.
func (m *Main) Close() error {
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		m.server.Shutdown(ctx)
	}
	if m.Store != nil {
		return m.Store.Close()
	}
	return nil
}

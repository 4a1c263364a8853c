package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rendertrust/rendertrust/blobstore"
	"github.com/rendertrust/rendertrust/node"
)

// LocalNodeDrainTimeout bounds how long the local node's running jobs may
// finish at shutdown, while the API still serves their uploads.
const LocalNodeDrainTimeout = 10 * time.Second

// localNode is the running local node agent.
type localNode struct {
	stop func()        // stops it taking work; running jobs finish or are handed back
	done chan struct{} // closed when it has stopped
}

// startLocalNode runs, under --dev, one node agent in this process against
// this server: it enrolls once (its credential stays in <data-dir>/node.json),
// runs echo and cpu_benchmark jobs for real, and render, inference and
// generic jobs through the labelled demo executors (node.Demo), so every
// example of the creator guide completes on a fresh checkout.
func (m *Main) startLocalNode(ctx context.Context) error {
	statePath := m.Config.DataPath("node.json")
	token := ""
	if _, err := os.Stat(statePath); errors.Is(err, os.ErrNotExist) {
		t, _, err := m.Identity.IssueEnrollmentToken(ctx, "system:dev")
		if err != nil {
			return fmt.Errorf("local node: %w", err)
		}
		token = t
	}
	// The dev machine's own AWS credentials, if any, fetch s3:// inputs;
	// without them the demo executors work from the reference (node.Demo).
	s3, err := blobstore.OpenS3Reader(ctx, blobstore.S3ReaderConfig{NoInstanceMetadata: true})
	if err != nil {
		return fmt.Errorf("local node: %w", err)
	}
	agent, err := node.New(node.Config{Inputs: &node.Fetcher{S3: s3},
		Server: "http://" + m.Addr(), EnrollToken: token, StatePath: statePath, Name: "local dev node",
		Executors: node.Demo(), WorkDir: m.Config.DataPath("node-work"), Log: m.Logger.With("component", "local-node"),
		DrainTimeout: LocalNodeDrainTimeout,
	})
	if err != nil {
		return fmt.Errorf("local node: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	m.local = &localNode{stop: cancel, done: make(chan struct{})}
	m.goWorker(func() error {
		defer close(m.local.done)
		return agent.Run(ctx)
	})
	return nil
}

// stopLocalNode stops the local node and waits until its running jobs have
// finished (or, past LocalNodeDrainTimeout, failed) and been reported:
// it must happen while the API still serves, or their results are lost.
func (m *Main) stopLocalNode() {
	if m.local == nil {
		return
	}
	m.local.stop()
	<-m.local.done
	m.Logger.Debug("shutdown: the local node stopped")
}

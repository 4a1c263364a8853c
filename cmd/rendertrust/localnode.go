package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rendertrust/rendertrust/blobstore"
	"github.com/rendertrust/rendertrust/node"
)

// startLocalNode runs, under --dev, one node agent in this process against
// this server: it enrolls once (its credential stays in <data-dir>/node.json),
// runs echo and cpu_benchmark jobs for real, and render, inference and
// generic jobs through the labelled demo executors (node.Demo), so every
// example of the creator guide completes on a fresh checkout.
func (m *Main) startLocalNode(ctx context.Context) error {
	statePath := m.Config.path("node.json")
	token := ""
	if _, err := os.Stat(statePath); errors.Is(err, os.ErrNotExist) {
		t, _, err := m.Commands.IssueEnrollmentToken(ctx, "system:dev")
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
		Executors: node.Demo(), WorkDir: m.Config.path("node-work"), Log: m.Log.With("component", "local-node"),
	})
	if err != nil {
		return fmt.Errorf("local node: %w", err)
	}
	m.goWorker(func() error { return agent.Run(ctx) })
	return nil
}

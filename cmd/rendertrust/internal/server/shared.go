package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rendertrust/rendertrust/cluster"
	rthttp "github.com/rendertrust/rendertrust/http"
)

// sharedWriteMarks is what the API shares read-your-writes marks through:
// the write_marks table on PostgreSQL, where a creator's next read may
// reach another API process; nothing on SQLite (one process).
func (m *Main) sharedWriteMarks() rthttp.WriteMarks {
	if m.writeMarks == nil {
		return nil // a nil *cluster.WriteMarks is not a nil interface
	}
	return m.writeMarks
}

// joinAPIProcesses refuses to serve the API beside a live API process on
// the same PostgreSQL installation that would refuse this one's tokens,
// whose tokens this one would refuse, or that stores results elsewhere
// (cluster.Join); it then keeps this process's row fresh until Close. A
// process without the api role signs, verifies and serves nothing, and
// SQLite has one process: neither joins.
func (m *Main) joinAPIProcesses(ctx context.Context, key ed25519.PrivateKey, accepted []ed25519.PublicKey, results string) error {
	if !m.Config.clustered() || !m.roles.roles.Has(cluster.RoleAPI) {
		return nil
	}
	signing := rthttp.KeyID(key.Public().(ed25519.PublicKey))
	accepts := []string{signing}
	for _, pub := range accepted {
		accepts = append(accepts, rthttp.KeyID(pub))
	}
	host, _ := os.Hostname()
	p, err := cluster.Join(ctx, m.DB, cluster.ProcessConfig{Holder: fmt.Sprintf("%s:%d", host, os.Getpid()),
		SigningKey: signing, Accepts: accepts, Results: results}, m.Logger)
	if err != nil {
		return err
	}
	m.goWorker(func() error { return p.Run(ctx) })
	return nil
}

// resultsKeyName is the link-signing key's file in a --results-dir;
// resultsMarkerName, the file whose random id tells result directories
// apart (the same path on two machines may be two directories). Blob names
// never start with a dot.
const (
	resultsKeyName    = ".link-key"
	resultsMarkerName = ".store-id"
)

// dirIdentity identifies a result directory among processes, wherever it
// is mounted: its marker's random id (created the first time), and a fingerprint of the key its
// links are signed with — a process signing with another key makes links
// the others refuse.
func dirIdentity(dir string, key []byte) (string, error) {
	id, err := readOrCreate(filepath.Join(dir, resultsMarkerName), func() []byte { return []byte(rand.Text()) })
	if err != nil {
		return "", fmt.Errorf("results dir marker: %w", err)
	}
	sum := sha256.Sum256(key)
	return fmt.Sprintf("directory id %s, link key %s", id, hex.EncodeToString(sum[:6])), nil
}

// s3Identity identifies a bucket among processes: its endpoint and name.
func (c *Config) s3Identity() string {
	endpoint := c.S3Endpoint
	if endpoint == "" {
		endpoint = "AWS"
	}
	return fmt.Sprintf("bucket %s at %s", c.S3Bucket, endpoint)
}

// readOrCreate returns the content of path, creating it (owner-only) with
// content's bytes when it does not exist. The file appears whole or not at
// all (a link from a temporary file), and of two processes creating it at
// once, both return the one that won.
func readOrCreate(path string, content func() []byte) ([]byte, error) {
	b, err := os.ReadFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".new-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(content())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return os.ReadFile(path)
}

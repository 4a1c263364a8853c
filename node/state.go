package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/rendertrust/rendertrust/internal/atomicfile"
)

// stateFileMode keeps the node's credential readable by its owner only.
const stateFileMode = 0o600

// DefaultStatePath returns where the agent keeps its state when not told:
// rendertrust/node.json in the user's config directory. It returns an
// error when the system has no such directory ($HOME unset).
func DefaultStatePath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "rendertrust", "node.json"), nil
}

// state is what the agent keeps across restarts: its enrollment, and the
// jobs it accepted but has not finished reporting, so a restart after a
// crash reports them as failed (they are then retried elsewhere) instead
// of leaving them RUNNING.
type state struct {
	Server     string   `json:"server"`
	NodeID     string   `json:"node_id"`
	Credential string   `json:"credential"`
	Jobs       []string `json:"jobs,omitempty"`
}

// stateFile is the state, saved to path (when not empty) on every change.
type stateFile struct {
	path string
	mu   sync.Mutex
	s    state
}

// loadState reads the state at path; a missing file (or an empty path) is
// an empty state. It returns an error for an unreadable or malformed file.
func loadState(path string) (*stateFile, error) {
	f := &stateFile{path: path}
	if path == "" {
		return f, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read node state: %w", err)
	}
	if err := json.Unmarshal(b, &f.s); err != nil {
		return nil, fmt.Errorf("node state %s: %w", path, err)
	}
	return f, nil
}

// get returns a copy of the state.
func (f *stateFile) get() state {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.s
	s.Jobs = slices.Clone(f.s.Jobs)
	return s
}

// update changes the state with change and saves it. It returns the save's
// error; the change stays in memory either way.
func (f *stateFile) update(change func(*state)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.s)
	return f.save()
}

// addJob records an accepted job.
func (f *stateFile) addJob(id string) error {
	return f.update(func(s *state) {
		if !slices.Contains(s.Jobs, id) {
			s.Jobs = append(s.Jobs, id)
		}
	})
}

// removeJob forgets a job whose outcome the server has.
func (f *stateFile) removeJob(id string) error {
	return f.update(func(s *state) { s.Jobs = slices.DeleteFunc(s.Jobs, func(j string) bool { return j == id }) })
}

// save writes the state atomically with owner-only permissions; f.mu is held.
func (f *stateFile) save() error {
	if f.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(f.s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(f.path, b, stateFileMode)
}

// writeFileAtomic writes b to path with mode, creating its directory (0700)
// if missing; see atomicfile.Write.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := atomicfile.Write(path, b, mode); err != nil {
		return fmt.Errorf("save node state: %w", err)
	}
	return nil
}

package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rendertrust/rendertrust/internal/atomicfile"
)

// TestWriteReplaces writes a new file, replaces it, and checks the content,
// the mode and that no temporary file is left behind.
func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, want := range []string{"first", "second, longer"} {
		if err := atomicfile.Write(path, []byte(want), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o640 {
		t.Errorf("mode %v, want 0640", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("dir holds %v (%v), want only state.json", entries, err)
	}
}

// TestWriteFailureLeavesOld fails a write (the target is a directory) and
// checks that nothing else in the directory changed.
func TestWriteFailureLeavesOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "taken")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "inside"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(path, []byte("x"), 0o600); err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		t.Errorf("dir holds %v (%v), want only the directory", entries, err)
	}
}

// TestWriteMissingDir fails when the directory does not exist.
func TestWriteMissingDir(t *testing.T) {
	if err := atomicfile.Write(filepath.Join(t.TempDir(), "no", "file"), nil, 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

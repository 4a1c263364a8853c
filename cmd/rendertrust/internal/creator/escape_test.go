package creator

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/client"
)

// TestEscapeControls: every control character but newline and tab is
// escaped, C1 controls too (also split across writes), and text is kept.
func TestEscapeControls(t *testing.T) {
	for in, want := range map[string]string{
		"plain ünïcode ✓\tand\nlines": "plain ünïcode ✓\tand\nlines",
		"\x1b]0;pwned\x07":            `\u001b]0;pwned\u0007`,
		"bell\a nul\x00 del\x7f cr\r": `bell\u0007 nul\u0000 del\u007f cr\u000d`,
		"csi \u009b31m c1 \u0085":     `csi \u009b31m c1 \u0085`,
		"latin \u00a0\u00e9":          "latin \u00a0\u00e9",
	} {
		if got := EscapeControls(in); got != want {
			t.Errorf("EscapeControls(%q) = %q, want %q", in, got, want)
		}
	}
	var b bytes.Buffer
	w := termSafe(&b)
	w.Write([]byte("a\xc2"))
	w.Write([]byte("\x9bb \xc2"))
	w.Write([]byte("\xa9"))
	if got, want := b.String(), `a\u009bb ©`; got != want {
		t.Errorf("C1 control split across writes: %q, want %q", got, want)
	}
}

// TestCLIEscapesServerText: a server whose job and error texts carry
// terminal escapes does not get them to the terminal: `jobs get` and the
// error line print them escaped (they were printed raw).
func TestCLIEscapesServerText(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"job \u001b[31mmissing"}}`))
			return
		}
		w.Write([]byte(`{"job_id":"j1","job_type":"echo","status":"FAILED","node_id":"node\u001b[1m","last_error":"boom\u001b[2J\u001b]0;owned\u0007","submitted_at":"2026-12-04T00:00:00Z"}`))
	}))
	defer api.Close()
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("HOME", config)
	t.Setenv(ServerEnv, "")
	if err := saveSession(savedSession{Server: api.URL, Tokens: client.Tokens{AccessToken: "a", RefreshToken: "r", ExpiresAt: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	out, err := runCreatorCLI("jobs", "get", "j1", "--server", api.URL)
	if err != nil {
		t.Fatalf("jobs get: %v\n%s", err, out)
	}
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `boom\u001b[2J\u001b]0;owned\u0007`) || !strings.Contains(out, `node\u001b[1m`) {
		t.Errorf("jobs get printed server text unescaped:\n%q", out)
	}
	missingOut, err := runCreatorCLI("jobs", "get", "missing", "--server", api.URL)
	if err == nil {
		t.Fatalf("jobs get of a missing job succeeded: %q", missingOut)
	}
	if line := EscapeControls(err.Error()); err == nil || strings.ContainsRune(line, 0x1b) || !strings.Contains(line, `\u001b[31mmissing`) {
		t.Errorf("error line %q", line)
	}
}

// runCreatorCLI runs the creator commands under a root command, as the
// binary does, and returns what they printed.
func runCreatorCLI(args ...string) (string, error) {
	root := &cobra.Command{Use: "rendertrust", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands()...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

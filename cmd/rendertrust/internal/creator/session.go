package creator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/internal/atomicfile"
)

// The client commands' configuration: a server URL from --server, else
// RENDERTRUST_SERVER, else the saved session's server, else the local
// default; the session in the user's config dir, owner-only.
const (
	ServerEnv           = "RENDERTRUST_SERVER"
	ServerDefault       = "http://127.0.0.1:8080"
	credentialsFileMode = 0o600
	credentialsDirMode  = 0o700
	credentialsBytesMax = 64 << 10
	credentialsDirName  = "rendertrust"
	credentialsFileName = "credentials.json"
)

// cliFlags are the flags every client command takes.
type cliFlags struct {
	server string
	json   bool
}

// bindCLIFlags binds --server and --json on a top-level client command, for
// it and its subcommands.
func bindCLIFlags(fs *pflag.FlagSet, f *cliFlags) {
	fs.StringVar(&f.server, "server", "", "API base URL (default: $"+ServerEnv+", the logged-in server, or "+ServerDefault+")")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of tables, for scripts")
}

// savedSession is the credentials file: one session with one server.
type savedSession struct {
	Server string `json:"server"`
	Email  string `json:"email,omitempty"`
	client.Tokens
}

// CredentialsPath returns where the session is kept:
// os.UserConfigDir()/rendertrust/credentials.json.
func CredentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config dir for credentials: %w", err)
	}
	return filepath.Join(dir, credentialsDirName, credentialsFileName), nil
}

// loadSession reads the saved session; none saved is a zero session.
func loadSession() (savedSession, error) {
	var s savedSession
	path, err := CredentialsPath()
	if err != nil {
		return s, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read credentials: %w", err)
	}
	defer f.Close()
	if err := json.NewDecoder(io.LimitReader(f, credentialsBytesMax)).Decode(&s); err != nil {
		return s, fmt.Errorf("credentials %s: %w", path, err)
	}
	return s, nil
}

// saveSession writes the session atomically, the file 0600 in a 0700 dir.
func saveSession(s savedSession) error {
	path, err := CredentialsPath()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, credentialsDirMode); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Chmod(dir, credentialsDirMode); err != nil { // MkdirAll leaves an existing dir's mode
		return fmt.Errorf("save credentials: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, b, credentialsFileMode); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// resolveServer picks the server URL: the flag, the environment, the
// saved session's, or the default.
func resolveServer(flag string, saved savedSession) string {
	for _, s := range []string{flag, os.Getenv(ServerEnv), saved.Server} {
		if s != "" {
			return strings.TrimRight(s, "/")
		}
	}
	return ServerDefault
}

// newCLIClient returns a client for the resolved server, resuming the saved
// session when it is that server's and saving every token change (refresh
// tokens rotate: an unsaved one is lost, and the old one no longer works).
func newCLIClient(f *cliFlags) (*client.Client, savedSession, error) {
	saved, err := loadSession()
	if err != nil {
		return nil, saved, err
	}
	server := resolveServer(f.server, saved)
	opts := []client.Option{client.WithUserAgent("rendertrust-cli")}
	if saved.Server == server {
		session := saved
		opts = append(opts, client.WithTokens(saved.Tokens), client.WithTokenHook(func(t client.Tokens) {
			session.Tokens = t
			if err := saveSession(session); err != nil {
				fmt.Fprintln(os.Stderr, "rendertrust: warning:", err)
			}
		}))
	} else {
		saved = savedSession{Server: server}
	}
	c, err := client.New(server, opts...)
	return c, saved, err
}

// Explain adds what to do next to the errors a creator can act on.
func Explain(err error) error {
	var apiErr *client.APIError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrUnauthorized):
		return fmt.Errorf("%w (not logged in, or the session ended: run 'rendertrust login')", err)
	case errors.Is(err, client.ErrInsufficientCredits):
		return fmt.Errorf("%w (buy credits with 'rendertrust credits buy')", err)
	case errors.Is(err, client.ErrNoHealthyNodes):
		return fmt.Errorf("%w (no node runs this job type right now; nothing was charged — try again later)", err)
	case errors.As(err, &apiErr) && apiErr.RetryAfter > 0:
		return fmt.Errorf("%w (try again in %s)", err, apiErr.RetryAfter)
	}
	return err
}

// cliPrintJSON writes v as indented JSON.
func cliPrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cliTable returns a tab-separated table writer; Flush prints it aligned.
func cliTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// cliCommand wraps a client command's run function: it builds the client,
// escapes the control characters of what it prints (server data) and
// explains the error.
func cliCommand(f *cliFlags, run func(cmd *cobra.Command, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, _, err := newCLIClient(f)
		if err != nil {
			return err
		}
		out, errOut := termSafe(cmd.OutOrStdout()).(*termSafeWriter), termSafe(cmd.ErrOrStderr()).(*termSafeWriter)
		cmd.SetOut(out)
		cmd.SetErr(errOut)
		defer func() { out.flushPending(); errOut.flushPending() }()
		return Explain(run(cmd, c, args))
	}
}

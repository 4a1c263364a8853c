package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of external commands.
const (
	// stderrTailBytesMax is how much of a command's standard error (its
	// end) a failure report quotes.
	stderrTailBytesMax = 2 << 10
	// commandWaitDelay is how long a killed command's output may take to
	// drain before its pipes are closed regardless.
	commandWaitDelay = 5 * time.Second
)

// Placeholders a command template may use, each inside any argument.
const (
	// PlaceholderRef is the payload's URI, or for an inline payload the path
	// of a file in the work dir holding its JSON.
	PlaceholderRef = "{ref}"
	// PlaceholderInput is the path of the local file holding the input: the
	// content of the payload's URI, fetched by the node before the command
	// runs, or for an inline payload the file holding its JSON.
	PlaceholderInput = "{input}"
	// PlaceholderOut is a path the command writes its result to; the
	// directory exists and is empty. If the command writes a file of another
	// name there instead (Blender appends frame numbers), that one file is
	// the result.
	PlaceholderOut = "{out}"
	// PlaceholderOutDir is the directory of PlaceholderOut.
	PlaceholderOutDir = "{outdir}"
	// PlaceholderWorkDir is the job's private work directory, also the
	// command's working directory.
	PlaceholderWorkDir = "{workdir}"
	// PlaceholderJob is the job's id.
	PlaceholderJob = "{job}"
)

// Command is an executor that runs an external program, for render,
// inference and generic jobs: for example
//
//	blender -b {ref} -o {out} -f 1
//
// The template is split into arguments once, like a shell would split it
// (quotes and backslashes) but with no shell: placeholders are substituted
// inside the arguments afterwards, so a payload is always exactly one
// argument, whatever it contains. Without {out} or {outdir} the result is
// the command's standard output. A command that exits with a non-zero
// status, outlives Timeout, or writes more than the result limit fails the
// job.
type Command struct {
	Args    []string      // the template, split; see ParseCommand
	Timeout time.Duration // 0: no limit beyond the context's
}

// ParseCommand returns a Command for template, split into arguments with
// shell-like quoting ('…', "…", backslash) and no expansion of any kind. It
// returns an error for an empty template or an unterminated quote.
func ParseCommand(template string, timeout time.Duration) (Command, error) {
	args, err := splitArgs(template)
	if err != nil {
		return Command{}, fmt.Errorf("command %q: %w", template, err)
	}
	if len(args) == 0 {
		return Command{}, errors.New("command: empty template")
	}
	return Command{Args: args, Timeout: timeout}, nil
}

// splitArgs splits s at unquoted white space. Single quotes keep
// everything literally; double quotes keep everything but backslash
// escapes of \ and "; a backslash outside quotes keeps the next character.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg, quote := false, rune(0)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'' && r != '\'', quote == '"' && r != '"' && r != '\\':
			cur.WriteRune(r)
		case quote != 0 && r == quote:
			quote = 0
		case r == '\\' && (quote == 0 || (quote == '"' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\'))):
			if i+1 == len(rs) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteRune(rs[i])
			inArg = true
		case quote == '"':
			cur.WriteRune(r) // a backslash that escapes nothing
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inArg {
				args, inArg = append(args, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// InputNeed returns InputRequired: a command gets the payload URI's
// content as a local file ({input}), and a job whose input cannot be
// fetched fails before the command runs.
func (Command) InputNeed() InputNeed { return InputRequired }

// Run runs the command for job and writes its result to out. It returns
// an error naming the exit status (with the end of standard error), the
// timeout, ErrResultTooLarge, or a missing result file.
func (c Command) Run(ctx context.Context, job Job, out io.Writer) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, fmt.Errorf("command timed out after %s", c.Timeout))
		defer cancel()
	}
	args, fileResult, err := c.expand(job)
	if err != nil {
		return err
	}
	stdout := &stickyWriter{w: out}
	if fileResult {
		stdout.w = io.Discard
	}
	stderr := &tailBuffer{max: stderrTailBytesMax}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = job.WorkDir, stdout, stderr
	cmd.Env = append(os.Environ(), "RENDERTRUST_JOB_ID="+job.ID, "RENDERTRUST_JOB_TYPE="+job.Type, "RENDERTRUST_ATTEMPT="+strconv.Itoa(job.Attempt))
	cmd.WaitDelay = commandWaitDelay
	isolate(cmd)
	err = cmd.Run()
	switch {
	case stdout.err != nil:
		return stdout.err
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", filepath.Base(args[0]), context.Cause(ctx))
	case err != nil:
		return fmt.Errorf("%s: %w%s", filepath.Base(args[0]), err, stderr.quote())
	case fileResult:
		return copyResultFile(filepath.Join(job.WorkDir, "out"), out)
	}
	return nil
}

// expand substitutes the placeholders of c.Args for job. It reports
// whether the result is a file (the template names {out} or {outdir}).
func (c Command) expand(job Job) (args []string, fileResult bool, err error) {
	ref, input := job.PayloadRef, ""
	switch {
	case ref == "":
		ref = filepath.Join(job.WorkDir, "payload.json")
		if err := os.WriteFile(ref, []byte(job.Payload), 0o600); err != nil {
			return nil, false, fmt.Errorf("write payload: %w", err)
		}
		input = ref
	case job.Input != nil:
		input = job.Input.Path
	}
	if strings.HasPrefix(ref, "-") {
		return nil, false, fmt.Errorf("payload reference %q starts with '-': refused as it could pass for an option", ref)
	}
	outDir := filepath.Join(job.WorkDir, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create output dir: %w", err)
	}
	r := strings.NewReplacer(PlaceholderRef, ref, PlaceholderInput, input, PlaceholderOut, filepath.Join(outDir, "result"),
		PlaceholderOutDir, outDir, PlaceholderWorkDir, job.WorkDir, PlaceholderJob, job.ID)
	for _, a := range c.Args {
		if input == "" && strings.Contains(a, PlaceholderInput) {
			return nil, false, fmt.Errorf("input %s was not fetched", ref)
		}
		fileResult = fileResult || strings.Contains(a, PlaceholderOut) || strings.Contains(a, PlaceholderOutDir)
		args = append(args, r.Replace(a))
	}
	return args, fileResult, nil
}

// copyResultFile copies the command's result file from dir to out: the
// file "result", else the one regular file dir holds.
func copyResultFile(dir string, out io.Writer) error {
	path := filepath.Join(dir, "result")
	if _, err := os.Stat(path); err != nil {
		entries, _ := os.ReadDir(dir)
		var files []string
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, e.Name())
			}
		}
		if len(files) != 1 {
			return fmt.Errorf("command wrote %d files to its output directory, want exactly 1", len(files))
		}
		path = filepath.Join(dir, files[0])
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(out, f)
	return err
}

// stickyWriter remembers the first write error, so the cause of a command's
// broken pipe is known.
type stickyWriter struct {
	w   io.Writer
	err error
}

// Write writes p, or fails with the first error a write met.
func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write keeps the end of p and never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// quote returns ": <the tail>" for an error message, or "" when empty.
func (t *tailBuffer) quote() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.b), "?"))
	if s == "" {
		return ""
	}
	return ": " + s
}

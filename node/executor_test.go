package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      bool
	}{
		{"Plain", "blender -b {ref} -o {out}", []string{"blender", "-b", "{ref}", "-o", "{out}"}, false},
		{"SingleQuotes", `sh -c 'echo "$1" > {out}' x`, []string{"sh", "-c", `echo "$1" > {out}`, "x"}, false},
		{"DoubleQuotes", `run "a b" "c\"d" "e\f"`, []string{"run", "a b", `c"d`, `e\f`}, false},
		{"Backslash", `run a\ b`, []string{"run", "a b"}, false},
		{"EmptyQuoted", `run ''`, []string{"run", ""}, false},
		{"ExtraSpace", "  run   a  ", []string{"run", "a"}, false},
		{"Unterminated", `run 'a`, nil, true},
		{"TrailingBackslash", `run a\`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitArgs(tc.in)
			if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
				t.Fatalf("splitArgs(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

// runCommand runs a Command template for a job with payload ref (or inline
// JSON when ref is not a URI) and returns the result and the error.
func runCommand(t *testing.T, tmpl string, timeout time.Duration, ref string, limit int64) (string, error) {
	t.Helper()
	c, err := ParseCommand(tmpl, timeout)
	if err != nil {
		t.Fatal(err)
	}
	job := Job{ID: "job-1", Type: "render", WorkDir: t.TempDir(), Attempt: 1}
	if strings.Contains(ref, "://") || strings.HasPrefix(ref, "-") {
		job.PayloadRef = ref
	} else {
		job.Payload = ref
	}
	var out bytes.Buffer
	err = c.Run(context.Background(), job, &limitWriter{w: &out, n: limit})
	return out.String(), err
}

func TestCommand(t *testing.T) {
	const hostile = "s3://bucket/a b;$(touch pwned)'\"`x`"
	for _, tc := range []struct {
		name, tmpl, ref string
		timeout         time.Duration
		limit           int64
		want            string
		wantErr         string
	}{
		{"Stdout", "printf %s {ref}", "s3://bucket/scene.blend", 0, 1 << 20, "s3://bucket/scene.blend", ""},
		{"PayloadIsOneArgument", "printf %s {ref}", hostile, 0, 1 << 20, hostile, ""},
		{"InlinePayloadFile", "cat {ref}", `{"frames":[1,2]}`, 0, 1 << 20, `{"frames":[1,2]}`, ""},
		{"OutFile", `sh -c 'printf rendered > "$1"' sh {out}`, "s3://b/k", 0, 1 << 20, "rendered", ""},
		{"OutDirSingleFile", `sh -c 'printf frame > "$1/result0001.png"' sh {outdir}`, "s3://b/k", 0, 1 << 20, "frame", ""},
		{"OutDirTwoFiles", `sh -c 'touch "$1/a" "$1/b"' sh {outdir}`, "s3://b/k", 0, 1 << 20, "", "wrote 2 files"},
		{"ExitStatus", `sh -c 'echo scene missing >&2; exit 3'`, "s3://b/k", 0, 1 << 20, "", "exit status 3: scene missing"},
		{"Timeout", "sleep 10", "s3://b/k", 100 * time.Millisecond, 1 << 20, "", "timed out after 100ms"},
		{"ErrResultTooLarge", "head -c 100000 /dev/zero", "s3://b/k", 0, 1000, "", "exceeds the size limit"},
		{"OutFileTooLarge", `sh -c 'head -c 5000 /dev/zero > "$1"' sh {out}`, "s3://b/k", 0, 1000, "", "exceeds the size limit"},
		{"OptionLikeRefRefused", "printf %s {ref}", "-rf", 0, 1 << 20, "", "starts with '-'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, err := runCommand(t, tc.tmpl, tc.timeout, tc.ref, tc.limit)
			if tc.wantErr == "" && (err != nil || got != tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

func TestCommandTooLargeIsErrResultTooLarge(t *testing.T) {
	_, err := runCommand(t, "head -c 100000 /dev/zero", 0, "s3://b/k", 1000)
	if !errors.Is(err, ErrResultTooLarge) {
		t.Fatalf("err %v, want ErrResultTooLarge", err)
	}
}

// TestCommandKillsGroup: a command that times out takes its children with it.
func TestCommandKillsGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "late")
	_, err := runCommand(t, `sh -c '(sleep 1; touch "$1") & sleep 10' sh `+marker, 100*time.Millisecond, "s3://b/k", 1<<20)
	if err == nil {
		t.Fatal("no timeout")
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a child of the timed-out command ran on")
	}
}

func TestEcho(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  Job
		want string
	}{
		{"Inline", Job{Payload: `{"hello":"world"}`}, `{"hello":"world"}`},
		{"Ref", Job{PayloadRef: "ipfs://cid"}, "ipfs://cid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := (Echo{}).Run(context.Background(), tc.job, &out); err != nil || out.String() != tc.want {
				t.Fatalf("got %q, %v; want %q", out.String(), err, tc.want)
			}
		})
	}
}

// TestCPUBenchmarkDeterministic: the checksum depends only on the rounds —
// it is the SHA-256 chain computed independently here — while the timing
// fields measure the run.
func TestCPUBenchmarkDeterministic(t *testing.T) {
	want := sha256.Sum256([]byte(BenchmarkName))
	for range 999 {
		want = sha256.Sum256(want[:])
	}
	var checksums []string
	for range 2 {
		var out bytes.Buffer
		if err := (CPUBenchmark{Rounds: 1000}).Run(context.Background(), Job{}, &out); err != nil {
			t.Fatal(err)
		}
		var r BenchmarkResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Rounds != 1000 || r.Benchmark != BenchmarkName || r.Score <= 0 {
			t.Fatalf("result %+v", r)
		}
		checksums = append(checksums, r.Checksum)
	}
	if checksums[0] != hex.EncodeToString(want[:]) || checksums[1] != checksums[0] {
		t.Fatalf("checksums %v, want %x twice", checksums, want)
	}
}

func TestCPUBenchmarkRounds(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		want          int64
		err           bool
	}{
		{"Default", "", 64, false},
		{"FromPayload", `{"rounds": 10}`, 10, false},
		{"OtherPayload", `{"scene": "x"}`, 64, false},
		{"Zero", `{"rounds": 0}`, 0, true},
		{"TooMany", `{"rounds": 2000000000}`, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CPUBenchmark{Rounds: 64}.rounds(tc.payload)
			if got != tc.want || (err != nil) != tc.err {
				t.Fatalf("rounds(%q) = %d, %v; want %d, error %v", tc.payload, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestCPUBenchmarkCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := (CPUBenchmark{Rounds: BenchmarkRoundsMax}).Run(ctx, Job{}, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

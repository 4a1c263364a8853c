package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Echo is the echo executor: the result is the payload itself — the inline
// JSON text, or the payload's URI.
type Echo struct{}

// Run writes the job's payload to out. It fails only when out does.
func (Echo) Run(ctx context.Context, job Job, out io.Writer) error {
	p := job.Payload
	if p == "" {
		p = job.PayloadRef
	}
	_, err := io.WriteString(out, p)
	return err
}

// Limits of the CPU benchmark.
const (
	// BenchmarkRoundsDefault is the benchmark's size when neither the
	// executor nor the payload sets one: about a quarter of a second on a
	// current core.
	BenchmarkRoundsDefault = 1 << 20
	// BenchmarkRoundsMax bounds the size a payload may ask for.
	BenchmarkRoundsMax = 1 << 30
	// benchmarkCheckEvery is how many rounds run between checks of ctx.
	benchmarkCheckEvery = 1 << 14
	// BenchmarkName names the workload and its version; the checksum of a
	// given number of rounds never changes within a name.
	BenchmarkName = "sha256-chain/v1"
)

// CPUBenchmark is the cpu_benchmark executor: a real, deterministic CPU
// workload — a chain of SHA-256 hashes, each of the previous one, seeded
// with the benchmark's name. The checksum (the last hash) depends only on
// the number of rounds, so every run of the same size on every machine
// returns the same checksum; the duration and score measure the machine.
type CPUBenchmark struct {
	// Rounds is the default size; 0 means BenchmarkRoundsDefault. A job's
	// inline payload {"rounds": n} overrides it (1..BenchmarkRoundsMax).
	Rounds int64
}

// BenchmarkResult is the cpu_benchmark result, as JSON.
type BenchmarkResult struct {
	Benchmark  string `json:"benchmark"`   // BenchmarkName
	Rounds     int64  `json:"rounds"`      // SHA-256 hashes computed
	Checksum   string `json:"checksum"`    // hex of the last hash: deterministic
	DurationMS int64  `json:"duration_ms"` // wall time of the chain, milliseconds
	// Score is thousands of hashes per second: higher is faster.
	Score int64 `json:"score"`
}

// Run runs the chain and writes a BenchmarkResult. It returns an error for
// a payload that asks for a bad size, and ctx's error when interrupted.
func (b CPUBenchmark) Run(ctx context.Context, job Job, out io.Writer) error {
	rounds, err := b.rounds(job.Payload)
	if err != nil {
		return err
	}
	start := time.Now()
	sum, err := sha256Chain(ctx, rounds)
	if err != nil {
		return err
	}
	d := max(time.Since(start), time.Microsecond)
	return json.NewEncoder(out).Encode(BenchmarkResult{
		Benchmark: BenchmarkName, Rounds: rounds, Checksum: hex.EncodeToString(sum[:]),
		DurationMS: d.Milliseconds(), Score: int64(float64(rounds) / d.Seconds() / 1000),
	})
}

// rounds returns the size a job asks for, or the executor's default.
func (b CPUBenchmark) rounds(payload string) (int64, error) {
	n := b.Rounds
	if n <= 0 {
		n = BenchmarkRoundsDefault
	}
	var p struct {
		Rounds *int64 `json:"rounds"`
	}
	if strings.HasPrefix(strings.TrimSpace(payload), "{") && json.Unmarshal([]byte(payload), &p) == nil && p.Rounds != nil {
		n = *p.Rounds
	}
	if n < 1 || n > BenchmarkRoundsMax {
		return 0, fmt.Errorf("cpu_benchmark: rounds %d, want 1..%d", n, BenchmarkRoundsMax)
	}
	return n, nil
}

// sha256Chain hashes the benchmark's name, then each hash, rounds times in
// all, and returns the last hash. It returns ctx's error if ctx ends first.
func sha256Chain(ctx context.Context, rounds int64) ([32]byte, error) {
	sum := sha256.Sum256([]byte(BenchmarkName))
	for i := int64(1); i < rounds; i++ {
		if i%benchmarkCheckEvery == 0 && ctx.Err() != nil {
			return sum, ctx.Err()
		}
		sum = sha256.Sum256(sum[:])
	}
	return sum, nil
}

// Builtin returns the built-in executors by job type: echo and
// cpu_benchmark (of the default size).
func Builtin() map[string]Executor {
	return map[string]Executor{"echo": Echo{}, "cpu_benchmark": CPUBenchmark{}}
}

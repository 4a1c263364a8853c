package replay_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/audit/audittest"
	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// benchEvents is the size of the benchmarks' log.
const benchEvents = 1_000_000

// BenchmarkReplay replays the installation of 1,000,000 events that
// BenchmarkCheck checks (audittest.Bench, cached in
// $TMPDIR/rendertrust-bench):
//
//   - All: every account, job and node folded from the whole log
//     (`replay --until now` without --user or --job), in events/s;
//   - Account, Job: one user's account or one job as of the head, from
//     their streams, per call.
//
// It runs only under -bench:
//
//	go test -run '^$' -bench Replay -benchtime 1x -timeout 60m ./audit/replay/
func BenchmarkReplay(b *testing.B) {
	in := audittest.Bench(b, benchEvents)
	m, err := replay.Resolve(ctx, in.Store, replay.Until{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("All", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			st, err := replay.StateAt(ctx, in.Store, m, replay.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if st.Events+st.Skipped != m.Position {
				b.Fatalf("replayed %d events, want %d", st.Events+st.Skipped, m.Position)
			}
		}
		b.ReportMetric(float64(m.Position)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
	r := rand.New(rand.NewPCG(1, 1))
	b.Run("Account", func(b *testing.B) {
		for b.Loop() {
			if _, err := replay.AccountAt(ctx, in.Store, projectiontest.UserID(r.IntN(10_000)), m); err != nil {
				b.Fatal(err)
			}
		}
	})
	jobs := sampleJobs(b, in)
	b.Run("Job", func(b *testing.B) {
		for b.Loop() {
			if _, err := replay.JobAt(ctx, in.Store, jobs[r.IntN(len(jobs))], m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// sampleJobs returns ids of jobs of the log (from its read model: which
// jobs to ask for is the benchmark's setup, not the replay's work).
func sampleJobs(b *testing.B, in *audittest.Installation) []domain.JobID {
	rows, err := in.DB.Query(ctx, `SELECT job_id FROM rm_jobs ORDER BY job_id LIMIT 1000`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []domain.JobID
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		out = append(out, domain.JobID(id))
	}
	if len(out) == 0 {
		b.Fatal("no jobs in the benchmark installation")
	}
	return out
}

package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/eventstore"
)

// Bench runs the event store benchmarks against h: appends with 1, 16 and
// 256 concurrent writers of ~400-byte events, bulk appends of 1,000-event
// batches, and ReadAll. Each reports events/s and, for appends, p50/p99
// latency in milliseconds.
func Bench(b *testing.B, h Harness) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("Append/writers=%d", writers), func(b *testing.B) { benchAppend(b, h, writers, 1) })
	}
	b.Run("AppendBulk/writers=1/batch=1000", func(b *testing.B) { benchAppend(b, h, 1, 1000) })
	b.Run("AppendBulk/writers=4/batch=1000", func(b *testing.B) { benchAppend(b, h, 4, 1000) })
	b.Run("ReadAll", func(b *testing.B) { benchReadAll(b, h) })
}

// benchEvent returns an event whose envelope is about 400 bytes.
func benchEvent(i int) eventstore.EventData {
	e := Event("job.submitted", map[string]any{
		"job_id": fmt.Sprintf("%08d-0000-7000-8000-000000000000", i), "owner": "0192f0c1-0000-7000-8000-00000000abcd",
		"type": "render", "priority": "normal", "gpu": true, "cost": 10,
		"payload": "s3://bucket/scenes/" + strings.Repeat("x", 60) + ".blend",
	})
	e.Metadata = eventstore.Metadata{Actor: "user:0192f0c1-0000-7000-8000-00000000abcd", CorrelationID: e.ID}
	return e
}

func benchAppend(b *testing.B, h Harness, writers, batch int) {
	s, _ := MustOpen(b, h)
	appends := max(b.N/batch, writers)
	perWriter := appends / writers
	latencies := make([][]time.Duration, writers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, perWriter)
			for i := range perWriter {
				events := make([]eventstore.EventData, batch)
				for k := range events {
					events[k] = benchEvent(i*batch + k)
				}
				t0 := time.Now()
				if _, err := s.Append(context.Background(), streamName("bench", w), eventstore.Any, events...); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			latencies[w] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all)*batch)/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
}

func benchReadAll(b *testing.B, h Harness) {
	s, _ := MustOpen(b, h)
	n := max(b.N, 1000)
	for i := 0; i < n; i += eventstore.AppendEventsMax {
		events := make([]eventstore.EventData, min(eventstore.AppendEventsMax, n-i))
		for k := range events {
			events[k] = benchEvent(i + k)
		}
		MustAppend(b, s, streamName("read", i), eventstore.Any, events...)
	}
	b.ResetTimer()
	start := time.Now()
	read := 0
	for read < n {
		events, err := s.ReadAll(context.Background(), uint64(read)+1, eventstore.ReadEventsMax)
		if err != nil {
			b.Fatal(err)
		}
		read += len(events)
	}
	b.ReportMetric(float64(read)/time.Since(start).Seconds(), "events/s")
}

// BenchFsync measures how many write+fsync pairs of 4 KiB the disk under dir
// completes per second, the ceiling for one-fsync-per-append designs.
func BenchFsync(b *testing.B, dir string) {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page, _ := json.Marshal(strings.Repeat("x", 4090))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(page, int64(i%64)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*p), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

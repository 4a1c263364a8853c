// Package loadgen drives an API with concurrent clients for a bounded time
// and reports throughput and latency percentiles. It only dials loopback
// addresses, so it cannot be pointed at someone else's server by mistake.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// DurationMax bounds one run.
const DurationMax = 2 * time.Minute

// Request is one request a client sends; Body is JSON when not nil.
type Request struct {
	Method, Path, Token string
	Body                []byte
	// Want is the status that counts as success.
	Want int
}

// Result is what a run measured.
type Result struct {
	Requests  int
	Failures  int
	Elapsed   time.Duration
	PerSecond float64
	P50, P99  time.Duration
}

// Run sends requests from clients goroutines for d against base (a
// loopback http URL). next returns client i's next request. It fails for a
// non-loopback base or a d over DurationMax.
func Run(ctx context.Context, base string, clients int, d time.Duration, next func(client, n int) Request) (Result, error) {
	if err := checkLoopback(base); err != nil {
		return Result{}, err
	}
	if d <= 0 || d > DurationMax {
		return Result{}, fmt.Errorf("loadgen: duration %s outside (0, %s]", d, DurationMax)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, clients)
	fails := make([]int, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				if err := send(ctx, hc, base, next(c, n)); err != nil {
					if ctx.Err() != nil {
						return
					}
					fails[c]++
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return summarize(lat, fails, time.Since(start)), nil
}

func send(ctx context.Context, hc *http.Client, base string, r Request) error {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.Path, body)
	if err != nil {
		return err
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != r.Want {
		return fmt.Errorf("%s %s: status %d", r.Method, r.Path, resp.StatusCode)
	}
	return nil
}

func summarize(lat [][]time.Duration, fails []int, elapsed time.Duration) Result {
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := Result{Requests: len(all), Elapsed: elapsed, PerSecond: float64(len(all)) / elapsed.Seconds()}
	for _, f := range fails {
		r.Failures += f
	}
	if len(all) > 0 {
		r.P50 = all[len(all)/2]
		r.P99 = all[min(len(all)*99/100, len(all)-1)]
	}
	return r
}

func checkLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return errors.New("loadgen: only loopback servers may be loaded")
		}
	}
	return nil
}

// Package loadgen drives an API with concurrent closed-loop clients for a
// bounded time and reports throughput, latency percentiles and errors by
// code. Unless told otherwise it only dials loopback addresses, so it
// cannot be pointed at someone else's server by mistake.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of a run.
const (
	// DurationMax bounds one run.
	DurationMax = time.Hour
	// ClientsMax bounds the concurrent clients.
	ClientsMax = 10_000
	// errorBodyBytesMax bounds the part of an error answer read for its code.
	errorBodyBytesMax = 64 << 10
	// progressInterval is how often Config.Progress is called.
	progressInterval = time.Second
)

// Request is one request a client sends; Body is JSON when not nil.
type Request struct {
	Method, Path, Token string
	Body                []byte
	// IdempotencyKey, when set, is sent as the Idempotency-Key header.
	IdempotencyKey string
	// Want is the status that counts as success.
	Want int
}

// Config describes a run.
type Config struct {
	// Bases are the API's base URLs: client i sends to Bases[i%len(Bases)],
	// so several API processes share the clients without a proxy.
	Bases    []string
	Clients  int
	Duration time.Duration
	// Next returns client's n-th request.
	Next func(client, n int) Request
	// Progress, when set, is called every second with the counts so far.
	Progress func(Progress)
	// AllowRemote permits a base URL that is not a loopback address.
	AllowRemote bool
}

// Progress is a run's running count.
type Progress struct {
	Elapsed        time.Duration
	Done, Failures int64
}

// Result is what a run measured.
type Result struct {
	Requests  int // answered with the wanted status
	Failures  int
	Elapsed   time.Duration
	PerSecond float64 // successful requests per second
	// Latency percentiles of the successful requests.
	P50, P90, P99, Max time.Duration
	// Errors counts the failures by error code ("insufficient_credits",
	// "http_500" for an answer without the API's error shape, "transport"
	// for no answer).
	Errors map[string]int
}

// Run sends requests from clients goroutines for d against base (a
// loopback http URL). next returns client i's next request. It fails for a
// non-loopback base or a d over DurationMax.
func Run(ctx context.Context, base string, clients int, d time.Duration, next func(client, n int) Request) (Result, error) {
	return RunConfig(ctx, Config{Bases: []string{base}, Clients: clients, Duration: d, Next: next})
}

// RunConfig runs c: each client sends its next request as soon as the last
// one is answered, until c.Duration has passed or ctx is done. It fails for
// no base URL, a non-loopback one (unless c.AllowRemote), or clients or a
// duration out of bounds.
func RunConfig(ctx context.Context, c Config) (Result, error) {
	if err := c.check(); err != nil {
		return Result{}, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Clients, MaxConnsPerHost: c.Clients}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	runs := make([]clientRun, c.Clients)
	var done, failed atomic.Int64
	start := time.Now()
	stopProgress := c.reportProgress(start, &done, &failed)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i].loop(ctx, hc, c.Bases[i%len(c.Bases)], func(n int) Request { return c.Next(i, n) }, &done, &failed)
		}()
	}
	wg.Wait()
	stopProgress()
	return summarize(runs, time.Since(start)), nil
}

func (c Config) check() error {
	if c.Clients <= 0 || c.Clients > ClientsMax {
		return fmt.Errorf("loadgen: clients %d outside [1, %d]", c.Clients, ClientsMax)
	}
	if c.Duration <= 0 || c.Duration > DurationMax {
		return fmt.Errorf("loadgen: duration %s outside (0, %s]", c.Duration, DurationMax)
	}
	if len(c.Bases) == 0 {
		return errors.New("loadgen: no base URL")
	}
	for _, base := range c.Bases {
		if err := CheckServer(base, c.AllowRemote); err != nil {
			return err
		}
	}
	return nil
}

// CheckServer returns an error unless base is an http(s) URL of a loopback
// address, or of any address when allowRemote.
func CheckServer(base string, allowRemote bool) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("loadgen: server %q: want http(s)://host:port", base)
	}
	if allowRemote {
		return nil
	}
	return checkLoopback(u)
}

// reportProgress calls c.Progress every progressInterval until the returned
// stop is called.
func (c Config) reportProgress(start time.Time, done, failed *atomic.Int64) (stop func()) {
	if c.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				c.Progress(Progress{Elapsed: time.Since(start), Done: done.Load(), Failures: failed.Load()})
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// clientRun is what one client measured.
type clientRun struct {
	latencies []time.Duration
	errors    map[string]int
}

func (r *clientRun) loop(ctx context.Context, hc *http.Client, base string, next func(n int) Request, done, failed *atomic.Int64) {
	for n := 0; ctx.Err() == nil; n++ {
		t0 := time.Now()
		code, err := send(ctx, hc, base, next(n))
		if ctx.Err() != nil {
			return // cut off by the end of the run: neither success nor failure
		}
		if err != nil {
			if r.errors == nil {
				r.errors = map[string]int{}
			}
			r.errors[code]++
			failed.Add(1)
			continue
		}
		r.latencies = append(r.latencies, time.Since(t0))
		done.Add(1)
	}
}

// send makes one request; for an unwanted answer it returns the error's
// code as well as an error.
func send(ctx context.Context, hc *http.Client, base string, r Request) (string, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.Path, body)
	if err != nil {
		return "request", err
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "transport", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == r.Want {
		io.Copy(io.Discard, resp.Body)
		return "", nil
	}
	code := errorCode(resp)
	return code, fmt.Errorf("%s %s: status %d %s", r.Method, r.Path, resp.StatusCode, code)
}

// errorCode returns the stable code of an error answer, or "http_NNN" when
// the body is not the API's error shape.
func errorCode(resp *http.Response) string {
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytesMax))
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		return body.Error.Code
	}
	return "http_" + strconv.Itoa(resp.StatusCode)
}

func summarize(runs []clientRun, elapsed time.Duration) Result {
	var all []time.Duration
	r := Result{Elapsed: elapsed}
	for _, c := range runs {
		all = append(all, c.latencies...)
		for code, n := range c.errors {
			if r.Errors == nil {
				r.Errors = map[string]int{}
			}
			r.Errors[code] += n
			r.Failures += n
		}
	}
	slices.Sort(all)
	r.Requests = len(all)
	r.PerSecond = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		r.P50, r.P90, r.P99 = Percentile(all, 50), Percentile(all, 90), Percentile(all, 99)
		r.Max = all[len(all)-1]
	}
	return r
}

// Percentile returns the p-th percentile (nearest rank) of sorted, which
// must not be empty.
func Percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100 // ⌈n·p/100⌉
	return sorted[max(rank, 1)-1]
}

func checkLoopback(u *url.URL) error {
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return errors.New("loadgen: only loopback servers may be loaded (allow others explicitly)")
		}
	}
	return nil
}

package storetest

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
)

var crashIterations = flag.Int("storetest.crash-iterations", 3, "SIGKILL crash-test iterations per backend")

// crashChildEnv carries the database location to a crash-test child process.
const crashChildEnv = "STORETEST_CRASH_CHILD_DB"

// crashWriters is the number of goroutines the child appends with.
const crashWriters = 8

// crashAfterAckMax bounds the random moment, counted from the child's first
// acknowledgement, at which it is killed: counting from its start would kill
// a slow (race-enabled, busy machine) child before it has connected.
const crashAfterAckMax = 400 * time.Millisecond

// crashFirstAckTimeout is how long a child may take to acknowledge its first
// append before the test fails.
const crashFirstAckTimeout = 2 * time.Minute

// runCrashChild, in a child process, appends under load and prints one line
// per acknowledged append until it is killed. It returns false in a parent.
func runCrashChild(h Harness) bool {
	db := os.Getenv(crashChildEnv)
	if db == "" {
		return false
	}
	t := &testing.T{} // the child reports through stdout, not through testing
	s := h.Open(t, db)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				stream := fmt.Sprintf("crash-%d-%d", os.Getpid(), w)
				acks, err := crashAppend(s, h.MultiAppend && w%2 == 1, stream, i)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				for _, a := range acks {
					fmt.Fprintf(out, "ack %d %s\n", a.position, a.id)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
	return true
}

// crashAck is one acknowledged event.
type crashAck struct {
	position uint64
	id       string
}

// crashPairType is the type of the events of the child's multi-stream
// appends; each carries its append's tag and event count.
const crashPairType = "crash-pair"

// crashAppend makes the child's i-th append on stream: a single-stream
// Append, or with multi an AppendMulti to stream and its "-b" twin.
func crashAppend(s eventstore.Store, multi bool, stream string, i int) ([]crashAck, error) {
	if !multi {
		events := Events("crash", 1+i%3)
		r, err := s.Append(context.Background(), stream, eventstore.Any, events...)
		if err != nil {
			return nil, err
		}
		acks := make([]crashAck, len(events))
		for k, e := range events {
			acks[k] = crashAck{r.FirstPosition + uint64(k), e.ID}
		}
		return acks, nil
	}
	tag := uuid.NewString()
	a := []eventstore.EventData{Event(crashPairType, crashPair{tag, 3})}
	b := []eventstore.EventData{Event(crashPairType, crashPair{tag, 3}), Event(crashPairType, crashPair{tag, 3})}
	rs, err := s.(eventstore.MultiAppender).AppendMulti(context.Background(),
		eventstore.StreamAppend{Stream: stream, Expected: eventstore.Any, Events: a},
		eventstore.StreamAppend{Stream: stream + "-b", Expected: eventstore.Any, Events: b})
	if err != nil {
		return nil, err
	}
	acks := []crashAck{{rs[0].FirstPosition, a[0].ID}}
	for k, e := range b {
		acks = append(acks, crashAck{rs[1].FirstPosition + uint64(k), e.ID})
	}
	return acks, nil
}

// crashPair is the body of a crashPairType event.
type crashPair struct {
	Tag    string `json:"tag"`
	Events int    `json:"events"`
}

// checkPairsWhole fails the test when a multi-stream append of the child is
// in the log only in part.
func checkPairsWhole(t *testing.T, it int, all []eventstore.RecordedEvent) {
	t.Helper()
	counts := map[crashPair]int{}
	for _, e := range all {
		if e.Type != crashPairType {
			continue
		}
		var p crashPair
		if err := json.Unmarshal(e.Data, &p); err != nil {
			t.Fatalf("iteration %d: position %d: %v", it, e.Position, err)
		}
		counts[p]++
	}
	for p, n := range counts {
		if n != p.Events {
			t.Fatalf("iteration %d: multi-stream append %s has %d of its %d events in the log", it, p.Tag, n, p.Events)
		}
	}
}

// testCrash: 1. a child process appends under load; 2. it is killed with
// SIGKILL at a random moment after its first acknowledgement; 3. after reopening, every append it had
// acknowledged is present at its position, positions are gapless, every
// hash verifies and (where the backend offers AppendMulti, which half the
// child's writers then use) every multi-stream append is whole or absent. Repeated -storetest.crash-iterations times on one database.
func testCrash(t *testing.T, h Harness) {
	db := h.NewDB(t)
	top := strings.SplitN(t.Name(), "/", 2)[0]
	acked := map[uint64]string{}
	for it := range *crashIterations {
		for pos, id := range crashOnce(t, db, top, time.Duration(rand.Int64N(int64(crashAfterAckMax)))) {
			acked[pos] = id
		}
		s := h.Open(t, db)
		all := ReadAllEvents(t, s) // checks gaps and hashes
		s.Close()
		for pos, id := range acked {
			if pos > uint64(len(all)) || all[pos-1].ID != id {
				t.Fatalf("iteration %d: acknowledged event %s at position %d is missing (log has %d)", it, id, pos, len(all))
			}
		}
		checkPairsWhole(t, it, all)
		t.Logf("iteration %d: %d acknowledged, %d in the log", it, len(acked), len(all))
	}
}

// crashOnce starts a child, kills it d after its first acknowledgement and
// returns what it acknowledged, which is never empty.
func crashOnce(t *testing.T, db, testName string, d time.Duration) map[uint64]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+testName+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+db)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	acked := map[uint64]string{}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	firstAck := time.NewTimer(crashFirstAckTimeout)
	defer firstAck.Stop()
	var kill <-chan time.Time
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				if len(acked) == 0 {
					t.Fatal("the child exited without acknowledging anything")
				}
				return acked
			}
			parseAck(t, line, acked)
			if len(acked) > 0 && firstAck != nil {
				firstAck.Stop()
				firstAck = nil
				kill = time.After(d)
			}
		case <-timerC(firstAck):
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			t.Fatalf("the child acknowledged nothing within %v", crashFirstAckTimeout)
		case <-kill:
			cmd.Process.Signal(syscall.SIGKILL)
			kill = nil
		}
	}
}

// timerC is t's channel, or nil (never ready) once t is spent.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func parseAck(t *testing.T, line string, acked map[uint64]string) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		return // a torn last line from the killed child
	}
	pos, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || len(f[2]) != 36 {
		return
	}
	acked[pos] = f[2]
}

package anchor_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

const (
	// testPoll is the worker's poll interval in tests.
	testPoll = 10 * time.Millisecond
	// waitTimeout bounds every wait for the worker or the log in tests.
	waitTimeout = 30 * time.Second
	// testStream is the stream test events are appended to.
	testStream = "test-1"
)

// osakaConfig is the simulated backend's dev config without the Bogota
// fork, whose repricing inflates an anchor's gas about threefold.
func osakaConfig() *params.ChainConfig {
	cfg := *params.AllDevChainProtocolChanges
	cfg.BogotaTime = nil
	return &cfg
}

// simChain is a simulated chain with the Anchor contract deployed; key
// owns the contract and writes to it.
type simChain struct {
	backend  *simulated.Backend
	client   *ethchain.Client
	key      *ecdsa.PrivateKey
	writer   *ethchain.Writer
	minerMu  sync.Mutex // serializes Commit and Fork
	stopMine func()
}

// mustSimChain starts a simulated chain (with options) and deploys the
// contract.
func mustSimChain(tb testing.TB, options ...func(*node.Config, *ethconfig.Config)) *simChain {
	tb.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	alloc := types.GenesisAlloc{crypto.PubkeyToAddress(key.PublicKey): {Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))}}
	options = append([]func(*node.Config, *ethconfig.Config){func(_ *node.Config, c *ethconfig.Config) {
		c.Genesis.Config = osakaConfig()
	}}, options...)
	backend := simulated.NewBackend(alloc, options...)
	tb.Cleanup(func() { backend.Close() })
	client, err := ethchain.New(context.Background(), backend.Client())
	if err != nil {
		tb.Fatal(err)
	}
	c := &simChain{backend: backend, client: client, key: key, stopMine: func() {}}
	addr, tx, err := ethchain.Deploy(context.Background(), client, key, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		tb.Fatalf("deploy: %v", err)
	}
	c.commit()
	if r, err := client.Receipt(context.Background(), tx); err != nil || r.Status != types.ReceiptStatusSuccessful {
		tb.Fatalf("deploy receipt: %v, %v", r, err)
	}
	c.writer = client.Writer(addr, key)
	return c
}

// trust is what a verifier of c's anchors trusts.
func (c *simChain) trust() proof.Trust {
	return proof.Trust{ChainID: c.client.ChainID(), Contract: c.writer.Contract()}
}

func (c *simChain) commit() {
	c.minerMu.Lock()
	defer c.minerMu.Unlock()
	c.backend.Commit()
}

// mine commits a block every interval until the returned func is called.
func (c *simChain) mine(tb testing.TB, interval time.Duration) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.commit()
			}
		}
	})
	stop := func() { cancel(); wg.Wait() }
	tb.Cleanup(stop)
	return stop
}

// env is an event store, the audit log's database, a chain, and the Log,
// Worker and Service on them.
type env struct {
	dir     string
	store   *sqlite.Store
	db      *sqldb.DB
	chain   ethchain.Node
	client  *ethchain.Client
	log     *anchor.Log
	worker  *anchor.Worker
	service *anchor.Service
	stop    func() error // stops Log and Worker, returning the first error other than cancellation
}

// envConfig configures newEnv.
type envConfig struct {
	dir    string // reuse a directory (restart); "" for a new one
	chain  ethchain.Node
	client *ethchain.Client
	worker anchor.WorkerConfig
	// sender configures the Sender over chain; its Confirmations default
	// to the worker's, its PollInterval is the worker's.
	sender ethchain.SenderConfig
	// noWorker runs the Log only.
	noWorker bool
	// dbFile is the audit log's database file in dir; "" is anchor.db.
	dbFile string
}

// newEnv opens the stores in cfg.dir and starts the Log and Worker.
func newEnv(tb testing.TB, cfg envConfig) *env {
	tb.Helper()
	ctx := context.Background()
	e := &env{dir: cfg.dir, chain: cfg.chain, client: cfg.client}
	if e.dir == "" {
		e.dir = tb.TempDir()
	}
	var err error
	if e.store, err = sqlite.Open(ctx, filepath.Join(e.dir, "events.db")); err != nil {
		tb.Fatal(err)
	}
	if cfg.dbFile == "" {
		cfg.dbFile = "anchor.db"
	}
	if e.db, err = sqldb.OpenSQLite(filepath.Join(e.dir, cfg.dbFile)); err != nil {
		tb.Fatal(err)
	}
	logger := testLogger(tb)
	if e.log, err = anchor.OpenLog(ctx, e.db, e.store, logger); err != nil {
		tb.Fatalf("OpenLog: %v", err)
	}
	wcfg := cfg.worker
	if wcfg.PollInterval == 0 {
		wcfg.PollInterval = testPoll
	}
	if wcfg.RetryMax == 0 {
		wcfg.RetryMax = 5 * testPoll
	}
	wcfg.Logger = logger
	sendCfg := cfg.sender
	if sendCfg.Confirmations == 0 {
		sendCfg.Confirmations = wcfg.Confirmations
	}
	sendCfg.PollInterval, sendCfg.Logger = wcfg.PollInterval, logger
	var chain anchor.Chain
	if cfg.chain != nil {
		chain = ethchain.NewSender(cfg.chain, anchor.NewAttempts(e.db), sendCfg)
	}
	e.worker = anchor.NewWorker(e.log, chain, e.store, wcfg)
	scfg := anchor.ServiceConfig{ExpectedWait: e.worker.ExpectedWait}
	if cfg.client != nil {
		scfg.Chain = cfg.client
		scfg.Trust = proof.Trust{ChainID: cfg.client.ChainID(), Contract: cfg.chain.Contract()}
	}
	e.service = anchor.NewService(e.db, e.store, scfg)

	runCtx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 2)
	run := func(f func(context.Context) error) {
		go func() {
			err := f(runCtx)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			errs <- err
		}()
	}
	run(e.log.Run)
	running := 1
	if !cfg.noWorker {
		run(e.worker.Run)
		running++
	}
	var once sync.Once
	var stopErr error
	e.stop = func() error {
		once.Do(func() {
			cancel()
			for range running {
				stopErr = errors.Join(stopErr, <-errs)
			}
			e.store.Close()
			e.db.Close()
		})
		return stopErr
	}
	tb.Cleanup(func() {
		if err := e.stop(); err != nil {
			tb.Errorf("Log or Worker: %v", err)
		}
	})
	return e
}

// testLogger logs to the test's log when RENDERTRUST_TEST_LOG is set.
func testLogger(tb testing.TB) *slog.Logger {
	if os.Getenv("RENDERTRUST_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

// appendEvents appends n test events in one append and returns their ids.
func (e *env) appendEvents(tb testing.TB, n int) []string {
	tb.Helper()
	ids := make([]string, n)
	events := make([]eventstore.EventData, n)
	for i := range ids {
		ids[i] = eventstore.NewEventID()
		data, _ := json.Marshal(map[string]any{"n": i, "note": fmt.Sprintf("test event %d", i)})
		events[i] = eventstore.EventData{ID: ids[i], Type: "test.happened", SchemaVersion: 1, Data: data}
	}
	if _, err := e.store.Append(context.Background(), testStream, eventstore.Any, events...); err != nil {
		tb.Fatalf("append: %v", err)
	}
	return ids
}

// waitAnchored waits until the service reports an anchored size ≥ size
// and returns it.
func (e *env) waitAnchored(tb testing.TB, size uint64) uint64 {
	tb.Helper()
	var got uint64
	waitUntil(tb, fmt.Sprintf("anchored size ≥ %d", size), func() bool {
		var err error
		got, err = e.service.LoadAnchoredSize(context.Background())
		if err != nil {
			tb.Fatalf("AnchoredSize: %v", err)
		}
		return got >= size
	})
	return got
}

// waitUntil polls cond until it holds, failing the test after waitTimeout.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(testPoll)
	}
}

// errOutage is what a flakyChain answers while down.
var errOutage = errors.New("test: connection refused (RPC outage)")

// flakyChain wraps a Sender's Node: it fails every call while down, can
// hide receipts, can override the suggested fees, and records what it
// sends.
type flakyChain struct {
	ethchain.Node
	down         atomic.Bool
	hideReceipts atomic.Bool
	fees         func() (tip, feeCap *big.Int) // nil: the chain's suggestion

	mu   sync.Mutex
	sent []*types.Transaction
}

var _ ethchain.Node = (*flakyChain)(nil)

func (f *flakyChain) check() error {
	if f.down.Load() {
		return errOutage
	}
	return nil
}

// sentTxs returns the distinct transactions sent so far, in order.
func (f *flakyChain) sentTxs() []*types.Transaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func (f *flakyChain) Nonce(ctx context.Context) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.Nonce(ctx)
}

func (f *flakyChain) Fees(ctx context.Context) (*big.Int, *big.Int, error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	if f.fees != nil {
		tip, feeCap := f.fees()
		return tip, feeCap, nil
	}
	return f.Node.Fees(ctx)
}

func (f *flakyChain) SignAnchor(ctx context.Context, a ethchain.AnchorTx) (*types.Transaction, error) {
	if err := f.check(); err != nil && a.Gas == 0 {
		return nil, err
	}
	return f.Node.SignAnchor(ctx, a)
}

func (f *flakyChain) Send(ctx context.Context, tx *types.Transaction) error {
	if err := f.check(); err != nil {
		return err
	}
	f.mu.Lock()
	if !slices.ContainsFunc(f.sent, func(s *types.Transaction) bool { return s.Hash() == tx.Hash() }) {
		f.sent = append(f.sent, tx)
	}
	f.mu.Unlock()
	return f.Node.Send(ctx, tx)
}

func (f *flakyChain) Receipt(ctx context.Context, h [32]byte) (*proof.Receipt, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if f.hideReceipts.Load() {
		return nil, fmt.Errorf("test: hidden receipt: %w", proof.ErrNotFound)
	}
	return f.Node.Receipt(ctx, h)
}

func (f *flakyChain) Head(ctx context.Context) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.Head(ctx)
}

func (f *flakyChain) Finalized(ctx context.Context) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.Finalized(ctx)
}

func (f *flakyChain) BlockHash(ctx context.Context, n uint64) ([32]byte, error) {
	if err := f.check(); err != nil {
		return [32]byte{}, err
	}
	return f.Node.BlockHash(ctx, n)
}

func (f *flakyChain) LatestSize(ctx context.Context, c proof.Address) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.LatestSize(ctx, c)
}

func (f *flakyChain) RootAt(ctx context.Context, c proof.Address, size uint64) ([32]byte, error) {
	if err := f.check(); err != nil {
		return [32]byte{}, err
	}
	return f.Node.RootAt(ctx, c, size)
}

func (f *flakyChain) FindAnchor(ctx context.Context, c proof.Address, size, from uint64) ([32]byte, error) {
	if err := f.check(); err != nil {
		return [32]byte{}, err
	}
	return f.Node.FindAnchor(ctx, c, size, from)
}

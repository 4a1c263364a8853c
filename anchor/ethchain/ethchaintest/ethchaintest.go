// Package ethchaintest runs the anchoring pipeline on a real in-process
// EVM chain for tests: a simulated chain with the Anchor contract deployed
// (SimChain), a node wrapper that stages RPC outages, hidden receipts and
// fee suggestions (Flaky), and an installation of the audit log, the
// anchor worker with its ethchain.Sender, and the proof service over
// SQLite (Env). anchor's and ethchain's tests share it.
package ethchaintest

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
	// Poll is the worker's poll interval in tests.
	Poll = 10 * time.Millisecond
	// WaitTimeout bounds every wait for the worker or the log in tests.
	WaitTimeout = 30 * time.Second
	// Stream is the stream test events are appended to.
	Stream = "test-1"
)

// osakaConfig is the simulated backend's dev config without the Bogota
// fork, whose repricing inflates an anchor's gas about threefold.
func osakaConfig() *params.ChainConfig {
	cfg := *params.AllDevChainProtocolChanges
	cfg.BogotaTime = nil
	return &cfg
}

// SimChain is a simulated chain with the Anchor contract deployed; Key
// owns the contract and writes to it through Writer.
type SimChain struct {
	Backend *simulated.Backend
	Client  *ethchain.Client
	Key     *ecdsa.PrivateKey
	Writer  *ethchain.Writer
	minerMu sync.Mutex // serializes Commit and Fork
}

// MustSimChain starts a simulated chain (with options) and deploys the
// contract; it fails tb if it cannot, and closes the chain when tb ends.
func MustSimChain(tb testing.TB, options ...func(*node.Config, *ethconfig.Config)) *SimChain {
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
	c := &SimChain{Backend: backend, Client: client, Key: key}
	addr, tx, err := ethchain.Deploy(context.Background(), client, key, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		tb.Fatalf("deploy: %v", err)
	}
	c.Commit()
	if r, err := client.Receipt(context.Background(), tx); err != nil || r.Status != types.ReceiptStatusSuccessful {
		tb.Fatalf("deploy receipt: %v, %v", r, err)
	}
	c.Writer = client.Writer(addr, key)
	return c
}

// Trust is what a verifier of c's anchors trusts.
func (c *SimChain) Trust() proof.Trust {
	return proof.Trust{ChainID: c.Client.ChainID(), Contract: c.Writer.Contract()}
}

// Commit mines a block.
func (c *SimChain) Commit() {
	c.minerMu.Lock()
	defer c.minerMu.Unlock()
	c.Backend.Commit()
}

// Mine commits a block every interval until the returned func is called
// (or tb ends).
func (c *SimChain) Mine(tb testing.TB, interval time.Duration) func() {
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
				c.Commit()
			}
		}
	})
	stop := func() { cancel(); wg.Wait() }
	tb.Cleanup(stop)
	return stop
}

// Env is an event store, the audit log's database, a chain, and the Log,
// Worker and Service on them.
type Env struct {
	Dir     string
	Store   *sqlite.Store
	DB      *sqldb.DB
	Chain   ethchain.Node
	Client  *ethchain.Client
	Log     *anchor.Log
	Worker  *anchor.Worker
	Service *anchor.Service
	Stop    func() error // stops Log and Worker, returning the first error other than cancellation
}

// EnvConfig configures NewEnv.
type EnvConfig struct {
	Dir    string // reuse a directory (restart); "" for a new one
	Chain  ethchain.Node
	Client *ethchain.Client
	Worker anchor.WorkerConfig
	// Sender configures the Sender over Chain; its Confirmations default
	// to the worker's, its PollInterval is the worker's.
	Sender ethchain.SenderConfig
	// NoWorker runs the Log only.
	NoWorker bool
	// DBFile is the audit log's database file in Dir; "" is anchor.db.
	DBFile string
}

// NewEnv opens the stores in cfg.Dir and starts the Log and Worker, which
// stop when tb ends (failing it if they stopped with an error).
func NewEnv(tb testing.TB, cfg EnvConfig) *Env {
	tb.Helper()
	ctx := context.Background()
	e := &Env{Dir: cfg.Dir, Chain: cfg.Chain, Client: cfg.Client}
	if e.Dir == "" {
		e.Dir = tb.TempDir()
	}
	var err error
	if e.Store, err = sqlite.Open(ctx, filepath.Join(e.Dir, "events.db")); err != nil {
		tb.Fatal(err)
	}
	if cfg.DBFile == "" {
		cfg.DBFile = "anchor.db"
	}
	if e.DB, err = sqldb.OpenSQLite(filepath.Join(e.Dir, cfg.DBFile)); err != nil {
		tb.Fatal(err)
	}
	logger := Logger(tb)
	if e.Log, err = anchor.OpenLog(ctx, e.DB, e.Store, logger); err != nil {
		tb.Fatalf("OpenLog: %v", err)
	}
	wcfg := cfg.Worker
	if wcfg.PollInterval == 0 {
		wcfg.PollInterval = Poll
	}
	if wcfg.RetryMax == 0 {
		wcfg.RetryMax = 5 * Poll
	}
	wcfg.Logger = logger
	sendCfg := cfg.Sender
	if sendCfg.Confirmations == 0 {
		sendCfg.Confirmations = wcfg.Confirmations
	}
	sendCfg.PollInterval, sendCfg.Logger = wcfg.PollInterval, logger
	var chain anchor.Chain
	if cfg.Chain != nil {
		chain = ethchain.NewSender(cfg.Chain, anchor.NewAttempts(e.DB), sendCfg)
	}
	e.Worker = anchor.NewWorker(e.Log, chain, e.Store, wcfg)
	scfg := anchor.ServiceConfig{ExpectedWait: e.Worker.ExpectedWait}
	if cfg.Client != nil {
		scfg.Chain = cfg.Client
		scfg.Trust = proof.Trust{ChainID: cfg.Client.ChainID(), Contract: cfg.Chain.Contract()}
	}
	e.Service = anchor.NewService(e.DB, e.Store, scfg)

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
	run(e.Log.Run)
	running := 1
	if !cfg.NoWorker {
		run(e.Worker.Run)
		running++
	}
	var once sync.Once
	var stopErr error
	e.Stop = func() error {
		once.Do(func() {
			cancel()
			for range running {
				stopErr = errors.Join(stopErr, <-errs)
			}
			e.Store.Close()
			e.DB.Close()
		})
		return stopErr
	}
	tb.Cleanup(func() {
		if err := e.Stop(); err != nil {
			tb.Errorf("Log or Worker: %v", err)
		}
	})
	return e
}

// Logger logs to the test's log when RENDERTRUST_TEST_LOG is set, and
// is nil (discard) otherwise.
func Logger(tb testing.TB) *slog.Logger {
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

// AppendEvents appends n test events to Stream in one append and returns
// their ids.
func (e *Env) AppendEvents(tb testing.TB, n int) []string {
	tb.Helper()
	ids := make([]string, n)
	events := make([]eventstore.EventData, n)
	for i := range ids {
		ids[i] = eventstore.NewEventID()
		data, _ := json.Marshal(map[string]any{"n": i, "note": fmt.Sprintf("test event %d", i)})
		events[i] = eventstore.EventData{ID: ids[i], Type: "test.happened", SchemaVersion: 1, Data: data}
	}
	if _, err := e.Store.Append(context.Background(), Stream, eventstore.Any, events...); err != nil {
		tb.Fatalf("append: %v", err)
	}
	return ids
}

// WaitAnchored waits until the service reports an anchored size ≥ size
// and returns it.
func (e *Env) WaitAnchored(tb testing.TB, size uint64) uint64 {
	tb.Helper()
	var got uint64
	WaitUntil(tb, fmt.Sprintf("anchored size ≥ %d", size), func() bool {
		var err error
		got, err = e.Service.LoadAnchoredSize(context.Background())
		if err != nil {
			tb.Fatalf("AnchoredSize: %v", err)
		}
		return got >= size
	})
	return got
}

// WaitUntil polls cond until it holds, failing the test after WaitTimeout.
func WaitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(Poll)
	}
}

// ErrOutage is what a Flaky answers while down.
var ErrOutage = errors.New("test: connection refused (RPC outage)")

// Flaky wraps a Sender's Node: it fails every call while Down, hides
// receipts while HideReceipts, answers FeeOverride's fees when set, and
// records what it sends.
type Flaky struct {
	ethchain.Node
	Down         atomic.Bool
	HideReceipts atomic.Bool
	FeeOverride  func() (tip, feeCap *big.Int) // nil: the chain's suggestion

	mu   sync.Mutex
	sent []*types.Transaction
}

var _ ethchain.Node = (*Flaky)(nil)

func (f *Flaky) check() error {
	if f.Down.Load() {
		return ErrOutage
	}
	return nil
}

// SentTxs returns the distinct transactions sent so far, in order.
func (f *Flaky) SentTxs() []*types.Transaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// Nonce implements ethchain.Node; it fails while Down.
func (f *Flaky) Nonce(ctx context.Context) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.Nonce(ctx)
}

// Fees implements ethchain.Node; it fails while Down.
func (f *Flaky) Fees(ctx context.Context) (*big.Int, *big.Int, error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	if f.FeeOverride != nil {
		tip, feeCap := f.FeeOverride()
		return tip, feeCap, nil
	}
	return f.Node.Fees(ctx)
}

// SignAnchor implements ethchain.Node; it fails while Down.
func (f *Flaky) SignAnchor(ctx context.Context, a ethchain.AnchorTx) (*types.Transaction, error) {
	if err := f.check(); err != nil && a.Gas == 0 {
		return nil, err
	}
	return f.Node.SignAnchor(ctx, a)
}

// Send implements ethchain.Node; it fails while Down.
func (f *Flaky) Send(ctx context.Context, tx *types.Transaction) error {
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

// Receipt implements ethchain.Node; it fails while Down.
func (f *Flaky) Receipt(ctx context.Context, h [32]byte) (*proof.Receipt, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if f.HideReceipts.Load() {
		return nil, fmt.Errorf("test: hidden receipt: %w", proof.ErrNotFound)
	}
	return f.Node.Receipt(ctx, h)
}

// Head implements ethchain.Node; it fails while Down.
func (f *Flaky) Head(ctx context.Context) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.Head(ctx)
}

// Finalized implements ethchain.Node; it fails while Down.
func (f *Flaky) Finalized(ctx context.Context) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.Finalized(ctx)
}

// BlockHash implements ethchain.Node; it fails while Down.
func (f *Flaky) BlockHash(ctx context.Context, n uint64) ([32]byte, error) {
	if err := f.check(); err != nil {
		return [32]byte{}, err
	}
	return f.Node.BlockHash(ctx, n)
}

// LatestSize implements ethchain.Node; it fails while Down.
func (f *Flaky) LatestSize(ctx context.Context, c proof.Address) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Node.LatestSize(ctx, c)
}

// RootAt implements ethchain.Node; it fails while Down.
func (f *Flaky) RootAt(ctx context.Context, c proof.Address, size uint64) ([32]byte, error) {
	if err := f.check(); err != nil {
		return [32]byte{}, err
	}
	return f.Node.RootAt(ctx, c, size)
}

// FindAnchor implements ethchain.Node; it fails while Down.
func (f *Flaky) FindAnchor(ctx context.Context, c proof.Address, size, from uint64) ([32]byte, error) {
	if err := f.check(); err != nil {
		return [32]byte{}, err
	}
	return f.Node.FindAnchor(ctx, c, size, from)
}

// MustVerified runs a verification and fails t unless every check passed.
func MustVerified(t testing.TB, what string, verify func() (*proof.Result, error)) *proof.Result {
	t.Helper()
	res, err := verify()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !res.Verified || len(res.Checks) == 0 {
		t.Fatalf("%s: not verified: failed %v, details %v", what, res.Failed(), res.Details)
	}
	return res
}

// WaitCtx returns a context that ends after WaitTimeout (or with t).
func WaitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// MustExecFile runs statements on the SQLite file name in dir.
func MustExecFile(t testing.TB, dir, name string, stmts ...string) {
	t.Helper()
	db, err := sqldb.OpenSQLite(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

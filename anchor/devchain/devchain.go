// Package devchain is the EVM chain `rendertrust serve --dev` anchors to: a
// go-ethereum node running in the process, in dev mode (one block per
// transaction, no peers), that keeps its state in a directory across
// restarts and serves JSON-RPC on a loopback port so any Ethereum tool can
// inspect it.
//
// The directory holds:
//
//	genesis.json   the chain's genesis, written once, so that the chain
//	               reopens the same whatever go-ethereum's defaults become
//	writer.key     the funded account that owns and writes the contract
//	               (hex, mode 0600; a dev key, never a production one)
//	anchor.json    the Anchor contract's address, written once deployed
//	node/          go-ethereum's data directory (Pebble database, about
//	               20 MB to start with)
//
// The chain runs the Osaka rules (go-ethereum's dev config without Bogota,
// whose Amsterdam repricing no public chain runs yet and which makes every
// anchor cost about three times as much gas).
package devchain

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/internal/atomicfile"
)

// File names inside the chain's directory.
const (
	genesisFile  = "genesis.json"
	keyFile      = "writer.key"
	contractFile = "anchor.json"
	nodeName     = "node"
	// fileMode is the files' mode: the key is secret, the rest need not be
	// shared.
	fileMode = 0o600
)

// Sizes and timings of the embedded node, small because it carries one
// account's anchors and nothing else.
const (
	// ChainID is the dev chain's id, go-ethereum's dev-mode default.
	ChainID = 1337
	// blockGasLimit is each block's gas limit.
	blockGasLimit = 30_000_000
	// databaseCacheMB, trieCacheMB: caches of the node's database and tries.
	databaseCacheMB = 32
	trieCacheMB     = 16
	// databaseHandlesMax bounds the files the database keeps open.
	databaseHandlesMax = 128
	// deployTimeout bounds deploying the contract on first open.
	deployTimeout = 30 * time.Second
	// minedPoll is how often Open polls for the deployment's receipt.
	minedPoll = 20 * time.Millisecond
)

// writerBalance is the writer account's balance at genesis: enough for
// hundreds of millions of anchors at dev-chain fees.
var writerBalance = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))

// Config configures Open.
type Config struct {
	// HTTPPort is the loopback port JSON-RPC is served on (http://127.0.0.1:port,
	// modules eth, net, web3); 0 picks a free port.
	HTTPPort int
}

// Chain is a running dev chain with the Anchor contract deployed.
type Chain struct {
	stack    *node.Node
	rpc      *rpc.Client
	client   *ethchain.Client
	key      *ecdsa.PrivateKey
	contract common.Address
}

// Open starts the dev chain kept in dir, creating dir, the chain and its
// funded writer key on first use and deploying the Anchor contract if dir
// does not name one with code on the chain. It returns an error if dir is
// unusable, is locked by another process, or holds a chain that does not
// match its genesis.json.
func Open(ctx context.Context, dir string, cfg Config) (*Chain, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	writer := crypto.PubkeyToAddress(key.PublicKey)
	genesis, err := loadOrCreateGenesis(filepath.Join(dir, genesisFile), writer)
	if err != nil {
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	stack, backend, err := startNode(dir, cfg, genesis, writer)
	if err != nil {
		return nil, fmt.Errorf("dev chain in %s: %w", dir, err)
	}
	c := &Chain{stack: stack, rpc: stack.Attach(), key: key}
	rpcClient := durable{Client: ethclient.NewClient(c.rpc), sync: backend.ChainDb().SyncKeyValue}
	if c.client, err = ethchain.New(ctx, rpcClient); err != nil {
		c.Close()
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	if c.contract, err = c.ensureContract(ctx, filepath.Join(dir, contractFile)); err != nil {
		c.Close()
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	return c, nil
}

// startNode assembles and starts the go-ethereum node: no peers, JSON-RPC
// on loopback, and a simulated beacon that seals a block as soon as a
// transaction arrives.
func startNode(dir string, cfg Config, genesis *core.Genesis, writer common.Address) (*node.Node, *eth.Ethereum, error) {
	nodeConf := node.DefaultConfig
	nodeConf.Name = nodeName
	nodeConf.DataDir = dir
	nodeConf.IPCPath = ""
	nodeConf.HTTPHost = "127.0.0.1"
	nodeConf.HTTPPort = cfg.HTTPPort
	nodeConf.HTTPVirtualHosts = []string{"localhost", "127.0.0.1"}
	// The Creator app reads anchored roots from this endpoint in the browser,
	// from the server's origin or the desktop app's; it serves only the
	// read-only eth, net and web3 namespaces on loopback.
	nodeConf.HTTPCors = []string{"*"}
	nodeConf.HTTPModules = []string{"eth", "net", "web3"}
	nodeConf.WSHost = ""
	nodeConf.P2P = p2p.Config{NoDiscovery: true, MaxPeers: 0}
	nodeConf.DBEngine = "pebble"
	nodeConf.UseLightweightKDF = true
	nodeConf.KeyStoreDir = filepath.Join(dir, nodeName, "keystore") // unused; kept out of the top level

	ethConf := ethconfig.Defaults
	ethConf.Genesis = genesis
	ethConf.NetworkId = ChainID
	ethConf.SyncMode = ethconfig.FullSync
	// Archive mode on the hash scheme writes every block's state as it is
	// mined: a server killed (SIGKILL, power loss) restarts on its chain,
	// where the default keeps recent state in memory and the next start
	// fails with "historical state … is not available".
	ethConf.StateScheme = rawdb.HashScheme
	ethConf.NoPruning = true
	ethConf.TransactionHistory = 0 // index every transaction: anchors stay findable forever
	ethConf.DatabaseCache = databaseCacheMB
	ethConf.DatabaseHandles = databaseHandlesMax
	ethConf.TrieCleanCache = trieCacheMB
	ethConf.TrieDirtyCache = trieCacheMB
	ethConf.SnapshotCache = trieCacheMB
	ethConf.TxPool.NoLocals = true
	ethConf.Miner.PendingFeeRecipient = writer
	ethConf.Miner.GasPrice = big.NewInt(1) // as geth --dev: any tip is mined

	stack, err := node.New(&nodeConf)
	if err != nil {
		return nil, nil, err
	}
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		stack.Close()
		return nil, nil, err
	}
	filterSystem := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filterSystem)}})
	beacon, err := catalyst.NewSimulatedBeacon(0, writer, backend)
	if err != nil {
		stack.Close()
		return nil, nil, err
	}
	catalyst.RegisterSimulatedBeaconAPIs(stack, beacon) // mines on every new transaction
	stack.RegisterLifecycle(beacon)
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, nil, err
	}
	return stack, backend, nil
}

// URL returns the JSON-RPC endpoint, http://127.0.0.1:PORT. It cannot fail.
func (c *Chain) URL() string { return c.stack.HTTPEndpoint() }

// Client returns an in-process client of the chain. It stays valid until
// Close.
func (c *Chain) Client() *ethchain.Client { return c.client }

// Key returns the funded key that owns the contract and may anchor.
func (c *Chain) Key() *ecdsa.PrivateKey { return c.key }

// Contract returns the Anchor contract's address.
func (c *Chain) Contract() proof.Address { return proof.Address(c.contract) }

// Trust returns the chain id and contract a verifier of this chain's
// anchors trusts.
func (c *Chain) Trust() proof.Trust {
	return proof.Trust{ChainID: c.client.ChainID(), Contract: c.Contract()}
}

// Writer returns a Writer that anchors to the contract with Key.
func (c *Chain) Writer() *ethchain.Writer { return c.client.Writer(c.contract, c.key) }

// Close stops the node, writing its state to the directory. It returns the
// node's error, if any.
func (c *Chain) Close() error {
	if c.rpc != nil {
		c.rpc.Close()
	}
	return c.stack.Close()
}

// contractRecord is anchor.json.
type contractRecord struct {
	Contract common.Address `json:"contract"`
	ChainID  uint64         `json:"chain_id"`
	DeployTx common.Hash    `json:"deploy_tx"`
}

// ensureContract returns the contract recorded at path if it has code on
// the chain, and otherwise deploys one and records it.
func (c *Chain) ensureContract(ctx context.Context, path string) (common.Address, error) {
	var rec contractRecord
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &rec); err != nil {
			return common.Address{}, fmt.Errorf("read %s: %w", path, err)
		}
		code, err := c.client.Backend().CodeAt(ctx, rec.Contract, nil)
		if err != nil {
			return common.Address{}, fmt.Errorf("read code of %s: %w", rec.Contract, err)
		}
		if len(code) > 0 {
			return rec.Contract, nil
		}
		// The chain was reset under a kept anchor.json: deploy afresh.
	case !errors.Is(err, os.ErrNotExist):
		return common.Address{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, deployTimeout)
	defer cancel()
	addr, tx, err := ethchain.Deploy(ctx, c.client, c.key, crypto.PubkeyToAddress(c.key.PublicKey))
	if err != nil {
		return common.Address{}, err
	}
	receipt, err := c.client.WaitMined(ctx, tx, minedPoll)
	if err != nil {
		return common.Address{}, fmt.Errorf("deploy Anchor: %w", err)
	}
	if !receipt.Succeeded() {
		return common.Address{}, fmt.Errorf("deploy Anchor: transaction %s failed", tx)
	}
	rec = contractRecord{Contract: addr, ChainID: c.client.ChainID(), DeployTx: tx}
	b, err = json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return common.Address{}, err
	}
	if err := atomicfile.Write(path, append(b, '\n'), fileMode); err != nil {
		return common.Address{}, err
	}
	return addr, nil
}

// loadOrCreateKey reads the key at path, or creates and saves one.
func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := crypto.LoadECDSA(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if key, err = crypto.GenerateKey(); err != nil {
		return nil, err
	}
	b := []byte(fmt.Sprintf("%x\n", crypto.FromECDSA(key)))
	if err := atomicfile.Write(path, b, fileMode); err != nil {
		return nil, err
	}
	return key, nil
}

// loadOrCreateGenesis reads the genesis at path, or creates and saves the
// dev genesis funding writer.
func loadOrCreateGenesis(path string, writer common.Address) (*core.Genesis, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		g := new(core.Genesis)
		if err := json.Unmarshal(b, g); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		return g, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	config := *params.AllDevChainProtocolChanges
	config.ChainID = big.NewInt(ChainID)
	config.BogotaTime = nil
	g := core.DeveloperGenesisBlock(blockGasLimit, &writer)
	g.Config = &config
	g.Alloc[writer] = types.Account{Balance: writerBalance}
	if b, err = json.MarshalIndent(g, "", "  "); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, append(b, '\n'), fileMode); err != nil {
		return nil, err
	}
	return g, nil
}

// durable is the dev chain's JSON-RPC client whose receipts and block
// numbers are on disk before the caller sees them. go-ethereum writes its
// database without syncing (pebble.NoSync: the WAL is flushed in the
// background), so a server killed (SIGKILL) could lose its last blocks
// after the anchor worker saw them mined and recorded their anchors in the
// durable event log; the check would then find anchors the chain does not
// have. Syncing after each read makes what was read durable.
type durable struct {
	*ethclient.Client
	sync func() error
}

// TransactionReceipt returns the receipt once its block is on disk.
func (d durable) TransactionReceipt(ctx context.Context, tx common.Hash) (*types.Receipt, error) {
	r, err := d.Client.TransactionReceipt(ctx, tx)
	if err != nil {
		return nil, err
	}
	return r, d.synced()
}

// BlockNumber returns the head's number once the head is on disk.
func (d durable) BlockNumber(ctx context.Context) (uint64, error) {
	n, err := d.Client.BlockNumber(ctx)
	if err != nil {
		return 0, err
	}
	return n, d.synced()
}

// HeaderByNumber returns the header once its block is on disk.
func (d durable) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	h, err := d.Client.HeaderByNumber(ctx, number)
	if err != nil {
		return nil, err
	}
	return h, d.synced()
}

func (d durable) synced() error {
	if err := d.sync(); err != nil {
		return fmt.Errorf("dev chain: sync its database: %w", err)
	}
	return nil
}

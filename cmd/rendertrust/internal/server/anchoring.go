package server

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/devchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/cluster"
	rthttp "github.com/rendertrust/rendertrust/http"
)

// anchoring is the audit log, the anchor worker and the proof service.
type anchoring struct {
	Dev     *devchain.Chain // the embedded chain, under --dev without a chain URL; else nil
	client  *ethchain.Client
	log     *anchor.Log
	worker  *anchor.Worker
	service *anchor.Service
}

// startAnchoring opens the chain (the embedded dev chain under --dev, else
// CHAIN_RPC_URL), the audit log and, with a writer key, the anchor worker;
// it returns nil when no chain is configured (the ledger endpoints then
// answer 503).
func (m *Main) startAnchoring(ctx context.Context) (*anchoring, error) {
	a := &anchoring{}
	var writer *ethchain.Writer
	switch {
	case m.Config.ChainRPCURL != "":
		c, err := ethchain.Dial(ctx, m.Config.ChainRPCURL)
		if err != nil {
			return nil, err
		}
		a.client = c
		if writer, err = m.chainWriter(c); err != nil {
			return nil, err
		}
	case m.Config.Dev:
		dc, err := devchain.Open(ctx, m.Config.DataPath("chain"), devchain.Config{HTTPPort: m.Config.DevChainPort})
		if err != nil {
			return nil, err
		}
		a.Dev, a.client, writer = dc, dc.Client(), dc.Writer()
		m.Logger.Info("dev chain", "rpc", dc.URL(), "contract", dc.Contract().Hex(), "chain_id", dc.Client().ChainID())
	default:
		return nil, nil
	}
	if m.Config.clustered() {
		return m.leadAnchoring(ctx, a, writer), nil
	}
	var err error
	if a.log, err = anchor.OpenLog(ctx, m.DB, m.Store, m.Logger); err != nil {
		a.close()
		return nil, err
	}
	cfg, scfg := m.workerConfig()
	if writer != nil && !m.Config.NoAnchor {
		sender := ethchain.NewSender(writer, anchor.NewAttempts(m.DB), scfg)
		a.worker = anchor.NewWorker(a.log, sender, m.Store, cfg)
	}
	sc := anchor.ServiceConfig{Chain: a.client, Trust: m.trust(a), Interval: cfg.Interval}
	if a.worker != nil {
		sc.ExpectedWait = a.worker.ExpectedWait
	}
	a.service = anchor.NewService(m.DB, m.Store, sc)
	if !m.Config.NoAnchor {
		m.goWorker(func() error { return a.log.Run(ctx) })
	}
	if a.worker != nil {
		m.goWorker(func() error { return a.worker.Run(ctx) })
	}
	return a, nil
}

// trust is the contract the API's verify accepts anchors from: the one this
// server anchors to (the dev chain's, or ANCHOR_CONTRACT), never the one a
// proof names. Without ANCHOR_CONTRACT verify answers 503.
func (m *Main) trust(a *anchoring) proof.Trust {
	if a.Dev != nil {
		return a.Dev.Trust()
	}
	t := proof.Trust{ChainID: a.client.ChainID()}
	if c, ok := proof.ParseAddress(m.Config.AnchorContract); ok {
		t.Contract = c
	}
	return t
}

// chainWriter returns the anchor writer for a real chain, or nil (proofs
// only) when no key file or contract is configured.
func (m *Main) chainWriter(c *ethchain.Client) (*ethchain.Writer, error) {
	if m.Config.ChainKeyFile == "" || m.Config.AnchorContract == "" {
		m.Logger.Warn("no CHAIN_KEY_FILE or ANCHOR_CONTRACT: serving proofs, not anchoring")
		return nil, nil
	}
	if !common.IsHexAddress(m.Config.AnchorContract) {
		return nil, fmt.Errorf("ANCHOR_CONTRACT %q is not an address", m.Config.AnchorContract)
	}
	key, err := ethchain.LoadKey(m.Config.ChainKeyFile)
	if err != nil {
		return nil, err
	}
	return c.Writer(common.HexToAddress(m.Config.AnchorContract), key), nil
}

// workerConfig fills the settings of the anchor worker and of its
// transaction sender; the dev chain seals a block per transaction, so one
// confirmation is all it ever gets.
func (m *Main) workerConfig() (anchor.WorkerConfig, ethchain.SenderConfig) {
	c := anchor.WorkerConfig{Interval: time.Minute, EveryEvents: 1000, Confirmations: 12, Logger: m.Logger}
	if m.Config.Dev && m.Config.ChainRPCURL == "" {
		c.Interval, c.EveryEvents, c.Confirmations, c.PollInterval = 10*time.Second, 100, 1, 100*time.Millisecond
	}
	if m.Config.AnchorInterval > 0 {
		c.Interval = m.Config.AnchorInterval
	}
	if m.Config.AnchorEvery > 0 {
		c.EveryEvents = m.Config.AnchorEvery
	}
	if m.Config.AnchorConfirmations > 0 {
		c.Confirmations = m.Config.AnchorConfirmations
	}
	return c, ethchain.SenderConfig{Confirmations: c.Confirmations, Finalized: m.Config.AnchorFinalized,
		PollInterval: c.PollInterval, Logger: m.Logger}
}

func (a *anchoring) close() {
	if a.Dev != nil {
		a.Dev.Close()
	} else if a.client != nil {
		a.client.Close()
	}
}

// chainInfo is what GET /api/v1/ledger/chain publishes: the chain id, the
// contract anchored on and, when public, a JSON-RPC URL to read roots from
// (the dev chain's loopback URL, or --public-chain-rpc-url).
func (m *Main) chainInfo() *rthttp.ChainInfo {
	a := m.Anchor
	switch {
	case a == nil:
		return nil
	case a.Dev != nil:
		return &rthttp.ChainInfo{ChainID: a.client.ChainID(), Contract: a.Dev.Contract().Hex(), RPCURL: a.Dev.URL()}
	case common.IsHexAddress(m.Config.AnchorContract):
		return &rthttp.ChainInfo{ChainID: a.client.ChainID(), Contract: common.HexToAddress(m.Config.AnchorContract).Hex(),
			RPCURL: m.Config.PublicChainRPCURL}
	}
	return nil
}

// leadAnchoring serves proofs from the audit log's tables and, when this
// process runs the anchor role, campaigns for it: the leader keeps the audit
// log and anchors (with a writer). See roles.go for why a deposed leader
// cannot anchor twice.
func (m *Main) leadAnchoring(ctx context.Context, a *anchoring, writer *ethchain.Writer) *anchoring {
	cfg, scfg := m.workerConfig()
	a.service = anchor.NewService(m.DB, m.Store, anchor.ServiceConfig{Chain: a.client, Trust: m.trust(a), Interval: cfg.Interval})
	if !m.roles.roles.Has(cluster.RoleAnchor) {
		return a
	}
	m.lead(ctx, cluster.RoleAnchor, func(ctx context.Context, _ *cluster.Term) error {
		log, err := anchor.OpenLog(ctx, m.DB, m.Store, m.Logger)
		if err != nil {
			return err
		}
		m.roles.set(cluster.RoleAnchor, true)
		errs := make(chan error, 2)
		go func() { errs <- log.Run(ctx) }()
		if writer == nil {
			return <-errs
		}
		sender := ethchain.NewSender(writer, anchor.NewAttempts(m.DB), scfg)
		go func() { errs <- anchor.NewWorker(log, sender, m.Store, cfg).Run(ctx) }()
		err = <-errs
		<-errs
		return err
	})
	return a
}

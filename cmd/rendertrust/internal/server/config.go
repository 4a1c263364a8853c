package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Config is everything the server can be told. Every flag can also come from
// the environment variable named beside it; a flag given on the command line
// wins over the environment. Nothing below cmd/ reads the environment.
type Config struct {
	Addr        string // RENDERTRUST_ADDR
	DataDir     string // RENDERTRUST_DATA_DIR
	Dev         bool   // RENDERTRUST_DEV
	DatabaseURL string // DATABASE_URL
	// EventStoreURL keeps the events in EventStoreDB (esdb://…); the read
	// models, identity and the audit log then live in PostgreSQL
	// (DATABASE_URL, required with it).
	EventStoreURL string // EVENTSTORE_URL
	JWTKeyFile    string // RENDERTRUST_JWT_KEY_FILE
	// JWTVerifyKeyFiles are the public keys (or old private keys) of other
	// signing keys whose tokens are accepted: a key rotation across
	// processes.
	JWTVerifyKeyFiles string // RENDERTRUST_JWT_VERIFY_KEY_FILES, comma-separated
	// AccessTokenTTL is how long an access token lasts (0: 15 minutes).
	AccessTokenTTL time.Duration // RENDERTRUST_ACCESS_TOKEN_TTL
	PublicURL      string        // RENDERTRUST_PUBLIC_URL
	CORSOrigins    string        // RENDERTRUST_CORS_ORIGINS, comma-separated
	LogLevel       string        // RENDERTRUST_LOG_LEVEL
	// TrustedProxies are the reverse proxies (IPs or CIDRs) whose
	// X-Forwarded-For names the client; without them the connection's own
	// address is the client's.
	TrustedProxies string // RENDERTRUST_TRUSTED_PROXIES, comma-separated
	// MetricsAddr serves /metrics on another address, not on the API's.
	MetricsAddr string // RENDERTRUST_METRICS_ADDR
	// Pprof serves Go's profiles under /debug/pprof/ on MetricsAddr, with
	// mutex and block profiling on: for operators profiling under load.
	Pprof bool // RENDERTRUST_PPROF

	StripeSecretKey     string        // STRIPE_SECRET_KEY
	StripeWebhookSecret string        // STRIPE_WEBHOOK_SECRET, comma-separated during rotation
	StripeAPIURL        string        // STRIPE_API_URL
	StripeSuccessURL    string        // STRIPE_SUCCESS_URL
	StripeCancelURL     string        // STRIPE_CANCEL_URL
	StripeTolerance     time.Duration // STRIPE_WEBHOOK_TOLERANCE

	NodeLostAfter time.Duration // RENDERTRUST_NODE_LOST_AFTER

	S3Bucket string // RENDERTRUST_S3_BUCKET: results in this bucket instead of the data dir
	// ResultsDir holds the results without a bucket (default: results in
	// the data dir); API processes on several machines share one.
	ResultsDir  string // RENDERTRUST_RESULTS_DIR
	S3Endpoint  string // RENDERTRUST_S3_ENDPOINT: an S3-compatible service
	S3Region    string // RENDERTRUST_S3_REGION
	S3PathStyle bool   // RENDERTRUST_S3_PATH_STYLE

	ChainRPCURL         string        // CHAIN_RPC_URL: a real chain (default under --dev: the embedded dev chain)
	AnchorContract      string        // ANCHOR_CONTRACT: the Anchor contract's address on that chain
	ChainKeyFile        string        // CHAIN_KEY_FILE: the writer's private key (hex), for anchoring
	PublicChainRPCURL   string        // RENDERTRUST_PUBLIC_CHAIN_RPC_URL: a chain JSON-RPC URL the app may read roots from
	DevChainPort        int           // RENDERTRUST_DEV_CHAIN_PORT: the dev chain's JSON-RPC port (0: any free one)
	AnchorInterval      time.Duration // RENDERTRUST_ANCHOR_INTERVAL
	AnchorEvery         uint64        // RENDERTRUST_ANCHOR_EVERY: anchor after this many events, at the latest
	AnchorConfirmations uint64        // RENDERTRUST_ANCHOR_CONFIRMATIONS
	AnchorFinalized     bool          // RENDERTRUST_ANCHOR_FINALIZED: wait for the finalized tag instead

	// Roles are the roles this process runs (cluster.ParseRoles), "all"
	// or empty for every one; fewer than all need PostgreSQL.
	Roles string // RENDERTRUST_ROLES

	NoProjections bool // RENDERTRUST_NO_PROJECTIONS: another process runs them
	NoAnchor      bool // RENDERTRUST_NO_ANCHOR: another process anchors
	NoLocalNode   bool // RENDERTRUST_NO_LOCAL_NODE: --dev without its built-in node
	NoReactor     bool // RENDERTRUST_NO_REACTOR: another process settles and dispatches
}

// EnvNames maps each flag to its environment variable.
var EnvNames = map[string]string{
	"addr":                  "RENDERTRUST_ADDR",
	"data-dir":              "RENDERTRUST_DATA_DIR",
	"dev":                   "RENDERTRUST_DEV",
	"database-url":          "DATABASE_URL",
	"eventstore-url":        "EVENTSTORE_URL",
	"jwt-key-file":          "RENDERTRUST_JWT_KEY_FILE",
	"jwt-verify-key-files":  "RENDERTRUST_JWT_VERIFY_KEY_FILES",
	"results-dir":           "RENDERTRUST_RESULTS_DIR",
	"public-url":            "RENDERTRUST_PUBLIC_URL",
	"cors-origins":          "RENDERTRUST_CORS_ORIGINS",
	"log-level":             "RENDERTRUST_LOG_LEVEL",
	"trusted-proxies":       "RENDERTRUST_TRUSTED_PROXIES",
	"metrics-addr":          "RENDERTRUST_METRICS_ADDR",
	"pprof":                 "RENDERTRUST_PPROF",
	"stripe-secret-key":     "STRIPE_SECRET_KEY",
	"stripe-webhook-secret": "STRIPE_WEBHOOK_SECRET",
	"stripe-api-url":        "STRIPE_API_URL",
	"stripe-success-url":    "STRIPE_SUCCESS_URL",
	"stripe-cancel-url":     "STRIPE_CANCEL_URL",
	"stripe-tolerance":      "STRIPE_WEBHOOK_TOLERANCE",
	"node-lost-after":       "RENDERTRUST_NODE_LOST_AFTER",
	"s3-bucket":             "RENDERTRUST_S3_BUCKET",
	"s3-endpoint":           "RENDERTRUST_S3_ENDPOINT",
	"s3-region":             "RENDERTRUST_S3_REGION",
	"s3-path-style":         "RENDERTRUST_S3_PATH_STYLE",
	"chain-rpc-url":         "CHAIN_RPC_URL",
	"anchor-contract":       "ANCHOR_CONTRACT",
	"chain-key-file":        "CHAIN_KEY_FILE",
	"dev-chain-port":        "RENDERTRUST_DEV_CHAIN_PORT",
	"access-token-ttl":      "RENDERTRUST_ACCESS_TOKEN_TTL",
	"public-chain-rpc-url":  "RENDERTRUST_PUBLIC_CHAIN_RPC_URL",
	"anchor-interval":       "RENDERTRUST_ANCHOR_INTERVAL",
	"anchor-every":          "RENDERTRUST_ANCHOR_EVERY",
	"anchor-confirmations":  "RENDERTRUST_ANCHOR_CONFIRMATIONS",
	"anchor-finalized":      "RENDERTRUST_ANCHOR_FINALIZED",
	"roles":                 "RENDERTRUST_ROLES",
	"no-anchor":             "RENDERTRUST_NO_ANCHOR",
	"no-local-node":         "RENDERTRUST_NO_LOCAL_NODE",
	"no-projections":        "RENDERTRUST_NO_PROJECTIONS",
	"no-reactor":            "RENDERTRUST_NO_REACTOR",
}

// BindStoreFlags binds the flags every command that opens the stores takes.
func (c *Config) BindStoreFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for the embedded databases, keys, results and chain")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL connection string (default: embedded SQLite in the data dir)")
	fs.StringVar(&c.EventStoreURL, "eventstore-url", "", "EventStoreDB connection string (esdb://…) for the events; needs --database-url for the rest")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// BindServeFlags binds the server's flags.
func (c *Config) BindServeFlags(fs *pflag.FlagSet) {
	c.BindStoreFlags(fs)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to serve the API on")
	fs.BoolVar(&c.Dev, "dev", false, "development mode: dev payments (no charge), a local node")
	fs.StringVar(&c.JWTKeyFile, "jwt-key-file", "", "Ed25519 private key (PKCS #8 PEM) signing access tokens (default: <data-dir>/jwt.key, created if missing)")
	fs.StringVar(&c.JWTVerifyKeyFiles, "jwt-verify-key-files", "", "public keys (PEM; or old private keys) of other signing keys whose tokens are accepted, comma-separated (key rotation)")
	fs.DurationVar(&c.AccessTokenTTL, "access-token-ttl", 0, "how long an access token lasts, 1s to 24h (default 15m)")
	fs.StringVar(&c.PublicURL, "public-url", "", "external base URL for download links (default: the request's host)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "app://rendertrust,http://localhost:5173", "origins allowed by CORS (the desktop app's)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed (default: none, the peer's address is the client's)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this address instead of the API's (e.g. 127.0.0.1:9090)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go's CPU, heap, mutex and block profiles under /debug/pprof/ on --metrics-addr (needs it)")
	fs.StringVar(&c.StripeSecretKey, "stripe-secret-key", "", "Stripe secret key (sk_…)")
	fs.StringVar(&c.StripeWebhookSecret, "stripe-webhook-secret", "", "Stripe webhook signing secrets (whsec_…), comma-separated")
	fs.StringVar(&c.StripeAPIURL, "stripe-api-url", "", "another Stripe API endpoint, e.g. stripe-mock")
	fs.StringVar(&c.StripeSuccessURL, "stripe-success-url", "", "where Checkout returns after payment")
	fs.StringVar(&c.StripeCancelURL, "stripe-cancel-url", "", "where Checkout's back button leads")
	fs.DurationVar(&c.StripeTolerance, "stripe-tolerance", 0, "webhook signature age tolerance (default 5m)")
	fs.StringVar(&c.S3Bucket, "s3-bucket", "", "store job results in this S3-compatible bucket, with presigned links (credentials from the AWS environment)")
	fs.StringVar(&c.ResultsDir, "results-dir", "", "directory for job results without --s3-bucket, shared by every API process (default: <data-dir>/results)")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "URL of an S3-compatible service (default: AWS)")
	fs.StringVar(&c.S3Region, "s3-region", "us-east-1", "the bucket's region")
	fs.BoolVar(&c.S3PathStyle, "s3-path-style", false, "address the bucket in the URL path (most S3-compatible services)")
	fs.DurationVar(&c.NodeLostAfter, "node-lost-after", 0, "how long a silent node keeps its jobs before they are retried elsewhere (default 1m)")
	fs.StringVar(&c.ChainRPCURL, "chain-rpc-url", "", "JSON-RPC URL of the chain to anchor on (default under --dev: the embedded dev chain)")
	fs.StringVar(&c.AnchorContract, "anchor-contract", "", "address of the Anchor contract (rendertrust admin deploy-anchor)")
	fs.StringVar(&c.ChainKeyFile, "chain-key-file", "", "file holding the anchor writer's private key (hex, owner-only permissions)")
	fs.StringVar(&c.PublicChainRPCURL, "public-chain-rpc-url", "", "a JSON-RPC URL of the chain that creators' apps may read anchored roots from")
	fs.IntVar(&c.DevChainPort, "dev-chain-port", 0, "loopback port of the dev chain's JSON-RPC (0: any free port)")
	fs.DurationVar(&c.AnchorInterval, "anchor-interval", 0, "anchor at least this often when new entries arrived (default 1m; 10s under --dev)")
	fs.Uint64Var(&c.AnchorEvery, "anchor-every", 0, "anchor after this many new entries (default 1000; 100 under --dev)")
	fs.Uint64Var(&c.AnchorConfirmations, "anchor-confirmations", 0, "confirmations before an anchor counts (default 12; 1 under --dev)")
	fs.BoolVar(&c.AnchorFinalized, "anchor-finalized", false, "wait for the finalized tag instead of confirmations")
	fs.StringVar(&c.Roles, "roles", "all", "roles this process runs: all, or a comma-separated list of api, projections, reactor, dispatcher, anchor (fewer than all need --database-url; each worker role runs in one process at a time)")
	fs.BoolVar(&c.NoLocalNode, "no-local-node", false, "under --dev, do not start the built-in local node")
	fs.BoolVar(&c.NoAnchor, "no-anchor", false, "do not run the audit log and anchor worker in this process")
	fs.BoolVar(&c.NoProjections, "no-projections", false, "do not run projections in this process")
	fs.BoolVar(&c.NoReactor, "no-reactor", false, "do not run the settlement reactor and dispatcher in this process")
}

// ApplyEnv fills every flag not set on the command line from its environment variable.
func ApplyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		name, ok := EnvNames[f.Name]
		if !ok || f.Changed || err != nil {
			return
		}
		if v, set := os.LookupEnv(name); set {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}

// DataPath returns the path of name in the data dir.
func (c *Config) DataPath(name string) string { return filepath.Join(c.DataDir, name) }

// JWTKeyPath returns the path of the key access tokens are signed with:
// --jwt-key-file, or jwt.key in the data dir.
func (c *Config) JWTKeyPath() string {
	if c.JWTKeyFile != "" {
		return c.JWTKeyFile
	}
	return c.DataPath("jwt.key")
}

// ResultsPath returns the directory job results are stored in without a
// bucket: --results-dir, or results in the data dir.
func (c *Config) ResultsPath() string {
	if c.ResultsDir != "" {
		return c.ResultsDir
	}
	return c.DataPath("results")
}

// trustedProxies parses TrustedProxies: IPs or CIDRs. It fails on an entry
// that is neither.
func (c *Config) trustedProxies() ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, p := range splitList(c.TrustedProxies) {
		if !strings.Contains(p, "/") {
			if ip := net.ParseIP(p); ip != nil && ip.To4() != nil {
				p += "/32"
			} else {
				p += "/128"
			}
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not an IP or CIDR", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// WithStores wraps an operator command's run function: it fills the flags
// from the environment, opens m's stores, runs f and closes them.
func WithStores(m *Main, f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := ApplyEnv(cmd.Flags()); err != nil {
			return err
		}
		defer m.Close()
		if err := m.Open(cmd.Context()); err != nil {
			return err
		}
		return f(cmd, args)
	}
}

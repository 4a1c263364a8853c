package operator

import (
	"context"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/blobstore"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
	"github.com/rendertrust/rendertrust/node"
)

// Environment variables of `rendertrust node`, beside --server's.
const enrollTokenEnv = "RENDERTRUST_ENROLL_TOKEN"

// nodeFlags are the node agent's command line.
type nodeFlags struct {
	cfg             node.Config
	renderCmd       string
	inferenceCmd    string
	genericCmd      string
	jobTypes        []string
	benchmarkRounds int64
	logLevel        string
	fetch           node.Fetcher
	s3              blobstore.S3ReaderConfig
}

// newNodeCommand returns `rendertrust node`: run a compute node agent.
func newNodeCommand() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node --server URL [--enroll TOKEN]",
		Short: "Run a compute node: enroll once, then take jobs and run them",
		Long: `Run a compute node agent. The first run enrolls with a one-time token
(rendertrust admin issues them) and keeps the node's credential in the
state file, so later runs need no token. echo and cpu_benchmark jobs run
built in; render, inference and generic jobs run the commands given with
--render-cmd, --inference-cmd and --generic-cmd, with no shell, after
substituting {input} (a local file: the payload URI's content, which the
node fetches first from https://, s3:// with its own AWS credentials, or
ipfs:// through --ipfs-gateway, checked against the CID; or the file
holding an inline payload's JSON), {ref} (the payload's URI), {out} (where
to write the result; without it the result is standard output), {outdir},
{workdir} and {job}. An input that cannot be fetched fails the attempt.
For example:

  rendertrust node --server https://api.example.com --enroll rte_… \
    --render-cmd 'blender -b {input} -o {out} -f 1'

SIGINT or SIGTERM stops taking work and lets running jobs finish for
--drain-timeout; a second signal interrupts them (they are reported failed
and retried elsewhere).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNode(cmd, &f) },
	}
	bindNodeFlags(cmd, &f)
	return cmd
}

func bindNodeFlags(cmd *cobra.Command, f *nodeFlags) {
	fs := cmd.Flags()
	statePath, _ := node.DefaultStatePath()
	fs.StringVar(&f.cfg.Server, "server", "", "API base URL (default: $"+creator.ServerEnv+")")
	fs.StringVar(&f.cfg.EnrollToken, "enroll", "", "one-time enrollment token, for the first run (default: $"+enrollTokenEnv+")")
	fs.StringVar(&f.cfg.StatePath, "state", statePath, "file keeping the node's credential and jobs in flight (0600)")
	fs.StringVar(&f.cfg.Name, "name", "", "the node's display name (default: the host name)")
	fs.IntVar(&f.cfg.Slots, "slots", node.SlotsDefault, "jobs run at once")
	fs.BoolVar(&f.cfg.GPU, "gpu", false, "the node has a GPU")
	fs.StringSliceVar(&f.jobTypes, "job-types", nil, "run only these job types (default: echo, cpu_benchmark and every type with a command)")
	fs.StringVar(&f.renderCmd, "render-cmd", "", "command for render jobs, e.g. 'blender -b {input} -o {out} -f 1'")
	fs.StringVar(&f.inferenceCmd, "inference-cmd", "", "command for inference jobs")
	fs.StringVar(&f.genericCmd, "generic-cmd", "", "command for generic jobs (without one, generic jobs are not taken)")
	fs.DurationVar(&f.cfg.JobTimeout, "job-timeout", node.JobTimeoutDefault, "longest a job may run")
	fs.Int64Var(&f.cfg.ResultBytesMax, "result-max-bytes", node.ResultBytesMaxDefault, "largest result a job may produce")
	fs.Int64Var(&f.benchmarkRounds, "benchmark-rounds", node.BenchmarkRoundsDefault, "size of a cpu_benchmark job that does not set one")
	fs.StringVar(&f.cfg.WorkDir, "work-dir", "", "directory for the jobs' files (default: a temporary one)")
	fs.DurationVar(&f.cfg.HeartbeatInterval, "heartbeat-interval", node.HeartbeatIntervalDefault, "how often to tell the server the node is alive")
	fs.DurationVar(&f.cfg.PollWait, "poll-wait", node.PollWaitDefault, "how long one poll for work waits (1s..30s)")
	fs.DurationVar(&f.cfg.DrainTimeout, "drain-timeout", node.DrainTimeoutDefault, "at shutdown, how long running jobs may finish")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Int64Var(&f.fetch.BytesMax, "input-max-bytes", node.InputBytesMaxDefault, "largest input (payload URI) a job may fetch")
	fs.DurationVar(&f.fetch.Timeout, "input-timeout", node.InputTimeoutDefault, "longest a job's input may take to fetch")
	fs.StringVar(&f.fetch.IPFSGateway, "ipfs-gateway", "", "IPFS HTTP gateway for ipfs:// inputs, e.g. http://127.0.0.1:8080 (without one, ipfs:// inputs fail)")
	fs.StringVar(&f.s3.Endpoint, "s3-endpoint", "", "S3-compatible service for s3:// inputs (default: AWS); credentials are the node's own AWS_* ones")
	fs.StringVar(&f.s3.Region, "s3-region", "", "region of the s3:// inputs' buckets (default: the AWS configuration's, else us-east-1)")
	fs.BoolVar(&f.s3.PathStyle, "s3-path-style", false, "address s3:// buckets in the path (most S3-compatible services need it)")
}

// inputs returns the fetcher of the jobs' inputs the flags configure.
func (f *nodeFlags) inputs(ctx context.Context) (*node.Fetcher, error) {
	r, err := blobstore.OpenS3Reader(ctx, f.s3)
	if err != nil {
		return nil, err
	}
	fetch := f.fetch
	fetch.S3 = r
	return &fetch, nil
}

// runNode builds the agent from the flags and runs it until a signal.
func runNode(cmd *cobra.Command, f *nodeFlags) error {
	cfg := f.cfg
	if cfg.Server == "" {
		cfg.Server = os.Getenv(creator.ServerEnv)
	}
	if cfg.EnrollToken == "" {
		cfg.EnrollToken = os.Getenv(enrollTokenEnv)
	}
	if cfg.Server == "" {
		return fmt.Errorf("--server (or $%s) is required", creator.ServerEnv)
	}
	execs, err := f.executors()
	if err != nil {
		return err
	}
	inputs, err := f.inputs(cmd.Context())
	if err != nil {
		return err
	}
	cfg.Executors, cfg.Inputs, cfg.Log = execs, inputs, server.NewLogger(f.logLevel)
	agent, err := node.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ran := make(chan struct{})
	defer close(ran)
	go interruptOnSecondSignal(ctx, ran, agent, cfg.Log)
	return agent.Run(ctx)
}

// interruptOnSecondSignal interrupts running jobs when a signal arrives
// after the first one began the graceful shutdown, until ran is closed.
func interruptOnSecondSignal(ctx context.Context, ran <-chan struct{}, agent *node.Agent, log *slog.Logger) {
	select {
	case <-ran:
		return
	case <-ctx.Done():
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	log.Info("stopping: no new work; running jobs may finish (signal again to interrupt them)")
	select {
	case <-sig:
		agent.Interrupt()
	case <-ran:
	}
}

// executors returns the executors the flags configure, limited to
// --job-types when given. It returns an error for a command template that
// does not parse, or a --job-types entry nothing runs.
func (f *nodeFlags) executors() (map[string]node.Executor, error) {
	all := map[string]node.Executor{"echo": node.Echo{}, "cpu_benchmark": node.CPUBenchmark{Rounds: f.benchmarkRounds}}
	for typ, tmpl := range map[string]string{"render": f.renderCmd, "inference": f.inferenceCmd, "generic": f.genericCmd} {
		if strings.TrimSpace(tmpl) == "" {
			continue
		}
		c, err := node.ParseCommand(tmpl, 0)
		if err != nil {
			return nil, fmt.Errorf("--%s-cmd: %w", typ, err)
		}
		all[typ] = c
	}
	if len(f.jobTypes) == 0 {
		return all, nil
	}
	picked := map[string]node.Executor{}
	for _, t := range f.jobTypes {
		ex, ok := all[t]
		if !ok {
			return nil, fmt.Errorf("--job-types: %q has no executor here (render, inference and generic need a --<type>-cmd)", t)
		}
		picked[t] = ex
	}
	return picked, nil
}

package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/esdb"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
)

// newReplayCommand returns `rendertrust replay --until TIME|POSITION
// [--user ID] [--job ID] [--json]`: any moment of history rebuilt from the
// raw event log alone.
func newReplayCommand() *cobra.Command {
	m := server.NewMain()
	var opts replayOptions
	cmd := &cobra.Command{
		Use:   "replay --until TIME|POSITION [--user ID] [--job ID] [--json]",
		Short: "Rebuild any moment of history from the raw event log",
		Long: `Rebuild state as of a moment from the event log alone — no read model, no
cache — through the same domain code that decided every event, and print it:

  --user ID   the user's balance, holds and available credits, and the account's
              history;
  --job ID    the job's state and full timestamped history: dispatches, nodes,
              attempts, errors, result hash, and its money — hold, charge,
              release, refunds;
  neither     totals over every account, job, node and anchor.

--until is a log position (1234: everything up to and including it), a time
(2026-03-06T12:00:00Z, or a date: everything recorded at or before it), or
"now". Every history line names the entry id whose Merkle proof
GET /api/v1/ledger/{entry_id}/proof serves.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := server.ApplyEnv(cmd.Flags()); err != nil {
				return err
			}
			store, err := openEventLog(cmd.Context(), m.Config)
			if err != nil {
				return err
			}
			defer store.Close()
			return runReplay(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), store, opts)
		},
	}
	m.Config.BindStoreFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.until, "until", "", `the moment: a log position, an RFC 3339 time or date, or "now"`)
	cmd.Flags().StringVar(&opts.user, "user", "", "show this user's account")
	cmd.Flags().StringVar(&opts.job, "job", "", "show this job")
	cmd.Flags().BoolVar(&opts.asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("until")
	return cmd
}

// replayOptions are the replay command's flags.
type replayOptions struct {
	until, user, job string
	asJSON           bool
}

// ReplayResult is what `replay --json` prints.
type ReplayResult struct {
	Moment  replay.Moment   `json:"moment"`
	Account *replay.Account `json:"account,omitempty"`
	Job     *replay.Job     `json:"job,omitempty"`
	Summary *replay.Summary `json:"summary,omitempty"`
}

// runReplay rebuilds the moment opts names from store and prints it to out;
// a whole-log replay shows its progress on progress.
func runReplay(ctx context.Context, out, progress io.Writer, store replay.Store, opts replayOptions) error {
	u, err := replay.ParseUntil(opts.until)
	if err != nil {
		return err
	}
	m, err := replay.Resolve(ctx, store, u)
	if err != nil {
		return err
	}
	res := ReplayResult{Moment: m}
	if opts.user != "" {
		if res.Account, err = replay.AccountAt(ctx, store, domain.UserID(opts.user), m); err != nil {
			return err
		}
	}
	if opts.job != "" {
		if res.Job, err = replay.JobAt(ctx, store, domain.JobID(opts.job), m); err != nil {
			return err
		}
	}
	if opts.user == "" && opts.job == "" {
		bar := progressbar.NewOptions64(int64(max(m.Position, 1)), progressbar.OptionSetWriter(progress),
			progressbar.OptionSetDescription("replay"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"), progressbar.OptionThrottle(replayBarThrottle), progressbar.OptionClearOnFinish())
		st, err := replay.StateAt(ctx, store, m, replay.Options{Progress: func(n uint64) { bar.Set64(int64(n)) }})
		bar.Finish()
		if err != nil {
			return err
		}
		sum := st.Summary()
		res.Summary = &sum
	}
	return writeReplay(out, res, opts.asJSON)
}

// replayBarThrottle is how often a progress bar redraws.
const replayBarThrottle = 200 * time.Millisecond

func writeReplay(out io.Writer, res ReplayResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	var err error
	if res.Account != nil {
		err = errors.Join(err, res.Account.Write(out))
	}
	if res.Job != nil {
		if res.Account != nil {
			fmt.Fprintln(out)
		}
		err = errors.Join(err, res.Job.Write(out))
	}
	if res.Summary != nil {
		err = errors.Join(err, res.Summary.Write(out))
	}
	return err
}

// openEventLog opens only the configured event store, as Main.OpenStores
// chooses it: replay reads the raw log and nothing else. An embedded log
// must exist already.
func openEventLog(ctx context.Context, c server.Config) (eventstore.Store, error) {
	switch {
	case c.EventStoreURL != "":
		return esdb.Open(ctx, c.EventStoreURL)
	case c.DatabaseURL != "":
		return postgres.Open(ctx, c.DatabaseURL)
	}
	path := c.DataPath("events.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no event log at %s (is --data-dir right?): %w", path, err)
	}
	return sqlite.Open(ctx, path)
}

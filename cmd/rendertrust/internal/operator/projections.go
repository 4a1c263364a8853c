package operator

import (
	"context"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/projections"
)

func newProjectionsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "projections", Short: "Inspect and rebuild the read models"}
	cmd.AddCommand(newProjectionsStatusCommand(), newProjectionsRebuildCommand())
	return cmd
}

func newProjectionsStatusCommand() *cobra.Command {
	m := server.NewMain()
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each projection's position and lag",
		RunE: server.WithStores(m, func(cmd *cobra.Command, _ []string) error {
			st, err := projections.ReadStatus(cmd.Context(), m.DB, m.Store, projections.All())
			if err != nil {
				return err
			}
			return writeProjectionStatus(cmd.OutOrStdout(), st)
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	return cmd
}

func newProjectionsRebuildCommand() *cobra.Command {
	m := server.NewMain()
	cmd := &cobra.Command{
		Use:   "rebuild [NAME…]",
		Short: "Replay the log into fresh tables and swap them in while queries keep being served",
		RunE: server.WithStores(m, func(cmd *cobra.Command, names []string) error {
			res, err := rebuildProjections(cmd.Context(), m, names, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			m.Logger.Info("rebuilt", "projections", res.Projections, "events", res.Events, "position", res.Position, "duration", res.Duration)
			return nil
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	return cmd
}

// rebuildProjections rebuilds the projections names (all when empty),
// drawing a progress bar on progress.
func rebuildProjections(ctx context.Context, m *server.Main, names []string, progress io.Writer) (projections.RebuildResult, error) {
	head, err := m.Store.Head(ctx)
	if err != nil {
		return projections.RebuildResult{}, fmt.Errorf("read head: %w", err)
	}
	shown := names
	if len(shown) == 0 {
		for _, p := range projections.All() {
			shown = append(shown, p.Name())
		}
	}
	b := newBar(progress, "rebuild "+strings.Join(shown, ", "), "events")
	b.set(0, head)
	res, err := projections.Rebuild(ctx, m.DB, m.Store, projections.RebuildOptions{Names: names, Logger: m.Logger,
		Progress: func(n uint64) { b.set(n, head) }})
	if err == nil {
		b.finish()
	}
	return res, err
}

// writeProjectionStatus writes statuses as a table, one projection a line.
// It returns w's error.
func writeProjectionStatus(w io.Writer, statuses []projections.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tGENERATION\tPOSITION\tHEAD\tLAG EVENTS\tLAG\tUPDATED\tSTATE")
	for _, s := range statuses {
		state := "ok"
		switch {
		case !s.Built:
			state = "not built"
		case s.Stale:
			state = "stale: rebuild needed"
		case s.Error != "":
			state = "failing: " + domain.StripControl(s.Error)
		case s.LagEvents > 0:
			state = "catching up"
		}
		updated := "-"
		if !s.UpdatedAt.IsZero() {
			updated = s.UpdatedAt.Format(time.RFC3339)
		}
		lag := (time.Duration(s.LagSeconds * float64(time.Second))).Round(time.Millisecond)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n",
			s.Name, s.Generation, s.Position, s.Head, s.LagEvents, lag, updated, state)
	}
	return tw.Flush()
}

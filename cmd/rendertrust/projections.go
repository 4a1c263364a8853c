package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/projections"
)

func newProjectionsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "projections", Short: "Inspect and rebuild the read models"}
	cmd.AddCommand(newProjectionsStatusCommand(), newProjectionsRebuildCommand())
	return cmd
}

func newProjectionsStatusCommand() *cobra.Command {
	m := NewMain()
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each projection's position and lag",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			defer m.Close()
			if err := m.Open(cmd.Context()); err != nil {
				return err
			}
			st, err := projections.Status(cmd.Context(), m.DB, m.Store, projections.All())
			if err != nil {
				return err
			}
			return projections.WriteStatus(cmd.OutOrStdout(), st)
		},
	}
	m.Config.bindStoreFlags(cmd.Flags())
	return cmd
}

func newProjectionsRebuildCommand() *cobra.Command {
	m := NewMain()
	cmd := &cobra.Command{
		Use:   "rebuild [NAME…]",
		Short: "Replay the log into fresh tables and swap them in while queries keep being served",
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			defer m.Close()
			if err := m.Open(cmd.Context()); err != nil {
				return err
			}
			res, err := projections.Rebuild(cmd.Context(), m.DB, m.Store, projections.RebuildOptions{Names: names, Progress: os.Stderr, Logger: m.Log})
			if err != nil {
				return err
			}
			m.Log.Info("rebuilt", "projections", res.Projections, "events", res.Events, "position", res.Position, "duration", res.Duration)
			return nil
		},
	}
	m.Config.bindStoreFlags(cmd.Flags())
	return cmd
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "rendertrust",
		Short:         "RenderTrust: an event-sourced, verifiable ledger for a compute marketplace",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newAdminCommand(), newProjectionsCommand(), newVerifyCommand(),
		newNodeCommand(), newReplayCommand(), newAuditCommand(), newCheckCommand(), newLoadtestCommand())
	root.AddCommand(creator.Commands()...)
	return root
}

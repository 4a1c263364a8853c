package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "rendertrust",
		Short:         "RenderTrust: an event-sourced, verifiable ledger for a compute marketplace",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newAdminCommand(), newProjectionsCommand(), newVerifyCommand(),
		newNodeCommand(), newLoginCommand(), newLogoutCommand(), newJobsCommand(), newCreditsCommand(), newLedgerCommand(),
		newReplayCommand(), newAuditCommand(), newCheckCommand(), newLoadtestCommand())
	return root
}

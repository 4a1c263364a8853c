// Package operator is the operator's side of the rendertrust binary: the
// server (serve) and node agent (node) commands, and the tools run beside
// them — admin, projections, replay, audit, check, verify and loadtest. They
// open the stores through package server's Main, and draw their own
// progress bars and tables (libraries report progress through callbacks).
// The binary's main registers them beside the creator's commands.
package operator

import "github.com/spf13/cobra"

// Commands returns the operator's commands, to add to the root command.
func Commands() []*cobra.Command {
	return []*cobra.Command{newServeCommand(), newAdminCommand(), newProjectionsCommand(), newVerifyCommand(),
		newNodeCommand(), newReplayCommand(), newAuditCommand(), newCheckCommand(), newLoadtestCommand()}
}

// Package creator is the creator's side of the rendertrust binary: the
// client commands of the creator guide (login, logout, jobs, credits,
// ledger), which talk to a server through the Go SDK (package client) and
// keep the session in the user's config directory. The binary's main
// registers them beside the server and the operator tools.
package creator

import "github.com/spf13/cobra"

// Commands returns the creator's commands, to add to the root command.
func Commands() []*cobra.Command {
	return []*cobra.Command{newLoginCommand(), newLogoutCommand(), newJobsCommand(), newCreditsCommand(), newLedgerCommand()}
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/operator"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "rendertrust",
		Short:         "RenderTrust: an event-sourced, verifiable ledger for a compute marketplace",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(operator.Commands()...)
	root.AddCommand(creator.Commands()...)
	return root
}

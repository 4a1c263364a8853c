package operator

import (
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// newRetireNodeCommand retires a node against the configured store: its
// credential is refused at once; the server retries its jobs elsewhere.
func newRetireNodeCommand() *cobra.Command {
	m := server.NewMain()
	var reason string
	cmd := &cobra.Command{
		Use:   "retire-node NODE_ID --reason R",
		Short: "Retire a node: its credential is refused, its jobs are retried on other nodes",
		Args:  cobra.ExactArgs(1),
		RunE: server.WithStores(m, func(cmd *cobra.Command, args []string) error {
			pos, err := m.Identity.RetireNode(cmd.Context(), commands.Actor{ID: "admin:cli"}, domain.NodeID(args[0]), reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "retired node %s (log position %d)\n", args[0], pos)
			return nil
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	cmd.Flags().StringVar(&reason, "reason", "", "why the node is retired")
	cmd.MarkFlagRequired("reason")
	return cmd
}

// newRotateNodeCredentialCommand gives a node a new credential and prints
// it; the old one is refused from now on.
func newRotateNodeCredentialCommand() *cobra.Command {
	m := server.NewMain()
	cmd := &cobra.Command{
		Use:   "rotate-node-credential NODE_ID",
		Short: "Give a node a new credential (printed once); the old one is refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: server.WithStores(m, func(cmd *cobra.Command, args []string) error {
			cred, err := m.Identity.RotateNodeCredential(cmd.Context(), domain.NodeID(args[0]))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), cred)
			return nil
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	return cmd
}

package operator

import (
	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"github.com/spf13/cobra"
)

func newServeCommand() *cobra.Command {
	m := server.NewMain()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API, projections, dispatcher, settlement reactor and anchor worker (or some of them: --roles)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := server.ApplyEnv(cmd.Flags()); err != nil {
				return err
			}
			if m.Config.Roles == "" { // given empty: say so, not "all"
				_, err := cluster.ParseRoles(m.Config.Roles)
				return err
			}
			defer m.Close()
			if err := m.Run(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			m.Logger.Info("shutting down")
			return nil
		},
	}
	m.Config.BindServeFlags(cmd.Flags())
	return cmd
}

package operator

import (
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
	"github.com/spf13/cobra"
)

func newServeCommand() *cobra.Command {
	m := server.NewMain()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API, projections, dispatcher and settlement reactor",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := server.ApplyEnv(cmd.Flags()); err != nil {
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

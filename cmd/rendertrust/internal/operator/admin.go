package operator

import (
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/identity"
)

func newAdminCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Operator tasks against the configured store"}
	cmd.AddCommand(newCreateUserCommand(), newDeployAnchorCommand(), newAdminRefundCommand(),
		newRetireNodeCommand(), newRotateNodeCredentialCommand())
	return cmd
}

func newCreateUserCommand() *cobra.Command {
	m := server.NewMain()
	var email, name, password string
	var isAdmin bool
	cmd := &cobra.Command{
		Use:   "create-user --email E --password P [--admin]",
		Short: "Create a user (an operator with --admin)",
		RunE: server.WithStores(m, func(cmd *cobra.Command, _ []string) error {
			role := identity.RoleCreator
			if isAdmin {
				role = identity.RoleAdmin
			}
			if name == "" {
				name = email
			}
			u, err := m.Identity.Register(cmd.Context(), email, name, password, role)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s user %s (%s)\n", u.Role, u.ID, u.Email)
			return nil
		}),
	}
	m.Config.BindStoreFlags(cmd.Flags())
	cmd.Flags().StringVar(&email, "email", "", "the user's email")
	cmd.Flags().StringVar(&name, "name", "", "the user's name (default: the email)")
	cmd.Flags().StringVar(&password, "password", "", "the user's password (at least 8 characters)")
	cmd.Flags().BoolVar(&isAdmin, "admin", false, "give the user the admin role")
	cmd.MarkFlagRequired("email")
	cmd.MarkFlagRequired("password")
	return cmd
}

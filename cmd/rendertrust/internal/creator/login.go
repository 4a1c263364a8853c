package creator

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rendertrust/rendertrust/client"
)

// cliPasswordBytesMax bounds a password read from standard input.
const cliPasswordBytesMax = 1 << 10

// newLoginCommand returns `rendertrust login`: start a session (creating
// the account with --register) and save it in the user's config dir.
func newLoginCommand() *cobra.Command {
	var f cliFlags
	var email, name string
	var register, passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [--email E] [--password-stdin] [--register --name N]",
		Short: "Log in to a RenderTrust server and keep the session in your config dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, saved, err := newCLIClient(&f)
			if err != nil {
				return err
			}
			in := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), cliPasswordBytesMax*4))
			if email == "" {
				if email, err = cliPrompt(cmd, in, "Email: "); err != nil {
					return err
				}
			}
			password, err := readPassword(cmd, in, passwordStdin)
			if err != nil {
				return err
			}
			u, err := startCLISession(cmd, c, register, email, name, password)
			if err != nil {
				return Explain(err)
			}
			saved.Email, saved.Tokens = u.Email, c.Tokens()
			if err := saveSession(saved); err != nil {
				return err
			}
			path, _ := CredentialsPath()
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (%s). Session saved in %s.\n", saved.Server, u.Email, u.Role, path)
			return nil
		},
	}
	bindCLIFlags(cmd.Flags(), &f)
	cmd.Flags().StringVar(&email, "email", "", "your email (asked if not given)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	cmd.Flags().BoolVar(&register, "register", false, "create the account first")
	cmd.Flags().StringVar(&name, "name", "", "your name, with --register (default: the email)")
	return cmd
}

func startCLISession(cmd *cobra.Command, c *client.Client, register bool, email, name, password string) (client.User, error) {
	if !register {
		return c.Login(cmd.Context(), email, password)
	}
	if name == "" {
		name = email
	}
	return c.Register(cmd.Context(), email, name, password)
}

// newLogoutCommand returns `rendertrust logout`: revoke the saved session
// and forget it.
func newLogoutCommand() *cobra.Command {
	var f cliFlags
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved session and remove it from your config dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, saved, err := newCLIClient(&f)
			if err != nil {
				return err
			}
			err = c.Logout(cmd.Context())
			path, perr := CredentialsPath()
			if perr == nil {
				if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
					return rerr
				}
			}
			if err != nil {
				return fmt.Errorf("the session is forgotten here, but the server could not revoke it: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s.\n", saved.Server)
			return nil
		},
	}
	bindCLIFlags(cmd.Flags(), &f)
	return cmd
}

// cliPrompt asks for one line on the terminal (or reads it from a pipe).
func cliPrompt(cmd *cobra.Command, in *bufio.Reader, label string) (string, error) {
	fmt.Fprint(cmd.ErrOrStderr(), label)
	line, err := in.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(strings.ToLower(label), ": "), err)
	}
	return strings.TrimSpace(line), nil
}

// readPassword reads the password without echo from a terminal, or the
// first line of standard input with --password-stdin or from a pipe.
func readPassword(cmd *cobra.Command, in *bufio.Reader, fromStdin bool) (string, error) {
	if f, ok := cmd.InOrStdin().(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := in.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

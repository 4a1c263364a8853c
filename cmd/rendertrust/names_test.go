package main

import (
	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/operator"
	wiring "github.com/rendertrust/rendertrust/cmd/rendertrust/internal/server"
)

// The names the end-to-end tests use from the packages the binary is made
// of: the wiring (internal/server) and the operator's commands
// (internal/operator). The tests stay beside main, which they run whole.
type (
	Main           = wiring.Main
	Config         = wiring.Config
	refundResult   = operator.RefundResult
	replayResult   = operator.ReplayResult
	loadtestReport = operator.LoadtestReport
)

var (
	NewMain                    = wiring.NewMain
	envNames                   = wiring.EnvNames
	errPprofWithoutMetricsAddr = wiring.ErrPprofWithoutMetricsAddr
	runAdminRefund             = operator.RunAdminRefund
	runVerify                  = operator.RunVerify
	runAuditVerify             = operator.RunAuditVerify
	errNotVerified             = operator.ErrNotVerified
	errBundleNotVerified       = operator.ErrBundleNotVerified
	errFindings                = operator.ErrFindings
)

const localNodeDrainTimeout = wiring.LocalNodeDrainTimeout

// operatorCommand returns a fresh operator command by its path under the
// root (e.g. "admin", "refund"), detached so it runs on its own as the
// tests' callers expect.
func operatorCommand(path ...string) *cobra.Command {
	root := &cobra.Command{Use: "rendertrust"}
	root.AddCommand(operator.Commands()...)
	cmd, _, err := root.Find(path)
	if err != nil || cmd == root {
		panic("no operator command " + path[len(path)-1])
	}
	cmd.Parent().RemoveCommand(cmd)
	return cmd
}

func newServeCommand() *cobra.Command       { return operatorCommand("serve") }
func newNodeCommand() *cobra.Command        { return operatorCommand("node") }
func newReplayCommand() *cobra.Command      { return operatorCommand("replay") }
func newAuditCommand() *cobra.Command       { return operatorCommand("audit") }
func newCheckCommand() *cobra.Command       { return operatorCommand("check") }
func newLoadtestCommand() *cobra.Command    { return operatorCommand("loadtest") }
func newAdminRefundCommand() *cobra.Command { return operatorCommand("admin", "refund") }

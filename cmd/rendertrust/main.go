// Command rendertrust is the RenderTrust server, node agent and tooling in
// one binary. main handles signals and exit codes and registers the
// commands: the operator's (serve, node, admin, projections, replay, audit,
// check, verify, loadtest: package internal/operator) and the creator's
// (login, logout, jobs, credits, ledger: package internal/creator). The
// server's wiring, Main, is package internal/server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is how a failed command's error is printed: once prefixed with
// the program's name, also when the error (an SDK error) already names it,
// its control characters (it may quote the server) escaped.
func errorLine(err error) string {
	const prefix = "rendertrust: "
	msg := creator.EscapeControls(err.Error())
	if strings.HasPrefix(msg, prefix) {
		return msg
	}
	return prefix + msg
}

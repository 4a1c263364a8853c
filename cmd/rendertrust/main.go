// Command rendertrust is the RenderTrust server, node agent and tooling in
// one binary. main handles signals and exit codes; Main wires the server;
// the operator tools (admin, projections, replay, audit, check, verify,
// loadtest) live here beside it and draw their own progress bars and
// tables; the creator's client commands are package internal/creator.
package main

import (
	"context"
	"fmt"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
	"os"
	"os/signal"
	"strings"
	"syscall"
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

// Command rendertrust is the RenderTrust server, node agent and tooling in
// one binary. main handles signals and exit codes; Main wires the rest.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "rendertrust:", err)
		os.Exit(1)
	}
}

// Command redfed runs and inspects a federation of Redis servers: where keys
// live, metrics written and read back, and the federation file of a fleet.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first interrupt cancels the context, so that a long command can
	// stop cleanly and say how far it got; a second one kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

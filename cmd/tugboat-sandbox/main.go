// Command tugboat-sandbox runs Tugboat on one machine: `demo` shows a canary
// promoted and another rolled back; `up` keeps a sandbox running to explore;
// `down` stops a running one.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

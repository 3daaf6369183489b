// Command ratemon watches API traffic published on NATS and tells API
// servers, through Redis flags and NATS decisions, which clients to refuse.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp(os.Stdin, os.Stdout, os.Stderr)
	err := app.RunContext(ctx, interspersed(app, os.Args))
	stop()
	if err != nil {
		code := 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "ratemon:", msg)
		}
		os.Exit(code)
	}
}

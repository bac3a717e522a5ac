// Command bbs is the bulletin board server. `bbs` serves, `bbs migrate`
// applies the schema migrations and exits, `bbs healthcheck` probes a
// running server (for container health checks without a shell), `bbs
// config` prints the configuration the environment makes, `bbs help`
// lists the commands and every setting.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bbsboard/bbs/pkg/redact"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bbs:", err)
		os.Exit(1)
	}
}

// run is the whole program; tests call it to start real servers. Its
// error never shows a credential of DATABASE_URL or REDIS_URL: a driver's
// message may quote the URL it could not use (pgx masks a URL's password,
// not a password in its query string).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return redact.Error(runCommand(ctx, args, getenv, stdout), getenv("DATABASE_URL"), getenv("REDIS_URL"))
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stdout)
	case "migrate":
		return migrate(ctx, getenv, stdout)
	case "healthcheck":
		return healthcheck(ctx, getenv)
	case "config":
		return showConfig(getenv, stdout)
	case "version":
		_, err := fmt.Fprintln(stdout, version)
		return err
	case "help", "-h", "-help", "--help":
		return help(stdout)
	default:
		return fmt.Errorf("unknown command %q (bbs help lists them)", cmd)
	}
}

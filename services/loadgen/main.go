// Command loadgen is the benchmark behind `make bench`: it starts a real
// local cluster (a throwaway Postgres database, its own redis-server and
// three bbs replicas on 127.0.0.1), drives it with SSE clients and writers
// spread over many 127.0.0.x source addresses, and prints what a user would
// ask about: fan-out latency, CPU per delivery, memory per idle stream,
// write throughput beside pgbench, and the cost of one change. It measures;
// it never fails on a figure. Figures are saved as JSON under -out.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	opts, err := parseOptions(args)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, opts, stdout)
	if err != nil {
		return err
	}
	defer b.close()
	return b.run(ctx)
}

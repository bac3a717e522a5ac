package main

import (
	"context"
	"time"
)

// costResult is what one write costs the shared services.
type costResult struct {
	Streams         int              `json:"streams"`
	Writes          int              `json:"writes"`
	QueriesPerWrite float64          `json:"db_queries_per_write"`
	RedisPerWrite   float64          `json:"redis_commands_per_write"`
	RedisByCommand  map[string]int64 `json:"redis_commands"`
	ElapsedSeconds  float64          `json:"elapsed_seconds"`
}

// cost makes sequential writes through replica 1 and counts the database
// statements every replica sent (bbs_db_queries_total) and the commands
// Redis ran (INFO commandstats). With streams == 1 it opens that stream.
func (b *bench) cost(ctx context.Context, streams int) error {
	if len(b.ss.streams) < streams {
		if err := b.ss.open(ctx, streams-len(b.ss.streams), b.targets(b.c.replicas), b.srcsSS); err != nil {
			return err
		}
	}
	rs := b.c.replicas
	q0, c0, err := b.counts(ctx, rs)
	if err != nil {
		return err
	}
	start := time.Now()
	for range b.opts.costWrites {
		if _, err := b.w.create(ctx, rs[0].Addr); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	final, err := b.version(ctx)
	if err != nil {
		return err
	}
	if _, err := b.settle(ctx, final, 10*time.Second); err != nil {
		return err
	}
	q1, c1, err := b.counts(ctx, rs)
	if err != nil {
		return err
	}
	total, per := commandDelta(c0, c1)
	n := float64(b.opts.costWrites)
	r := costResult{
		Streams:         len(b.ss.streams),
		Writes:          b.opts.costWrites,
		QueriesPerWrite: (q1 - q0) / n,
		RedisPerWrite:   float64(total) / n,
		RedisByCommand:  per,
		ElapsedSeconds:  elapsed.Seconds(),
	}
	b.res.Cost = append(b.res.Cost, r)
	b.printCost(r)
	return nil
}

// settle waits until every stream has version final, or for at most
// wait; whoever is still behind then counts as missing events.
func (b *bench) settle(ctx context.Context, final int64, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	for !b.ss.caughtUp(final) {
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true, nil
}

// counts reads the statements the replicas sent and the commands Redis ran.
func (b *bench) counts(ctx context.Context, rs []*replica) (queries float64, commands map[string]int64, err error) {
	if queries, err = metricSum(ctx, rs, "bbs_db_queries_total"); err != nil {
		return 0, nil, err
	}
	commands, err = commandStats(ctx, b.rdb)
	return queries, commands, err
}

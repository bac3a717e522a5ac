package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSmallRun runs the whole benchmark at a tiny scale against a real
// cluster (Postgres, its own redis-server, three bbs processes) and checks
// its accounting, not its speed: every stream got every write exactly
// once, nothing failed, and each section has its figures.
func TestSmallRun(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bbs")
	build := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, "github.com/bbsboard/bbs/services/bbs")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build bbs: %v\n%s", err, out)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var report bytes.Buffer
	err := run(ctx, []string{"-bbs", bin, "-out", out, "-points", "20x20,60x10", "-duration", "1s",
		"-idle", "100", "-write-time", "500ms", "-writers", "4", "-rounds", "1", "-cost-writes", "10"}, &report)
	t.Log("\n" + report.String())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Fanout) != 2 {
		t.Fatalf("%d fan-out points, want 2", len(res.Fanout))
	}
	for _, f := range res.Fanout {
		if f.DeliveryLagP99 <= 0 || f.DeliveryLagP99 < f.DeliveryLagP50 {
			t.Errorf("%d×%d: delivery lag from the replicas' histogram p50 %v, p99 %v ms", f.Streams, f.Rate, f.DeliveryLagP50, f.DeliveryLagP99)
		}
		if f.Missing != 0 || f.WriteErrors != 0 || f.Resyncs != 0 || f.StreamsEnded != 0 {
			t.Errorf("%d×%d: missing %d, write errors %d, resyncs %d, streams ended %d; want all 0",
				f.Streams, f.Rate, f.Missing, f.WriteErrors, f.Resyncs, f.StreamsEnded)
		}
		if want := f.Streams * f.Writes; f.Deliveries != want || f.Latency.N != want {
			t.Errorf("%d×%d: %d deliveries (%d timed), want %d streams × %d writes = %d",
				f.Streams, f.Rate, f.Deliveries, f.Latency.N, f.Streams, f.Writes, want)
		}
	}
	if len(res.Cost) != 2 {
		t.Fatalf("%d cost runs, want 2", len(res.Cost))
	}
	for _, c := range res.Cost {
		// A create is 2 statements; a periodic version check may fall in.
		if c.QueriesPerWrite < 2 || c.QueriesPerWrite > 2.5 || c.RedisByCommand["publish"] != int64(c.Writes) {
			t.Errorf("with %d streams: %.2f queries and %d publishes for %d writes", c.Streams, c.QueriesPerWrite, c.RedisByCommand["publish"], c.Writes)
		}
	}
	// bbs via 1 and via 3 replicas, pgbench's one create per transaction
	// and plain insert, and its batches when bbs batched.
	if n := len(res.Throughput); n != 4 && n != 5 {
		t.Fatalf("%d throughput runs, want 4 or 5", n)
	}
	for _, tp := range res.Throughput {
		if tp.Writes == 0 || tp.Errors != 0 || tp.Latency.N != tp.Writes {
			t.Errorf("%s: %d writes, %d errors, %d timed", tp.Name, tp.Writes, tp.Errors, tp.Latency.N)
		}
	}
	for _, tp := range res.Throughput[:2] {
		// Every create is committed in a batch of at least one, with at
		// most 2 statements (a lone create: the INSERT and the bump); the
		// count is of every statement on every replica, so the replicas'
		// version checks and catch-ups in a half-second run add a little.
		if tp.MeanBatch < 1 || tp.QueriesPerWrite <= 0 || tp.QueriesPerWrite > 3.5 {
			t.Errorf("%s: mean batch %.2f, %.2f statements per create", tp.Name, tp.MeanBatch, tp.QueriesPerWrite)
		}
	}
	if res.Idle.Streams != 100 || res.Idle.GoroutinesPerStream <= 0 || res.Idle.StreamsIn2GiB <= 0 {
		t.Errorf("idle: %+v", res.Idle)
	}
}

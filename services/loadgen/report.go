package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

type machine struct {
	Cores         int    `json:"cores"`
	CPU           string `json:"cpu"`
	Go            string `json:"go"`
	OpenFileLimit string `json:"open_file_limit"`
	Replicas      int    `json:"replicas"`
}

// results is the JSON saved after a run.
type results struct {
	Command    string             `json:"command"`
	Started    time.Time          `json:"started"`
	Seconds    float64            `json:"seconds"`
	Machine    machine            `json:"machine"`
	Cost       []costResult       `json:"cost_per_write"`
	Throughput []throughputResult `json:"write_throughput"`
	Fanout     []fanoutResult     `json:"fanout"`
	Idle       idleResult         `json:"idle_streams"`
}

func (b *bench) header() {
	m := b.res.Machine
	fmt.Fprintf(b.out, "bbs benchmark  %s\n", b.res.Started.Format(time.RFC3339))
	fmt.Fprintf(b.out, "machine: %d cores (%s), %s, open-file limit %s\n", m.Cores, m.CPU, m.Go, m.OpenFileLimit)
	fmt.Fprintf(b.out, "cluster: Postgres (throwaway database), its own redis-server, %d bbs replicas, loader: all on 127.0.0.1, sharing the cores\n", m.Replicas)
}

func (b *bench) table(title string, rows [][]string) {
	fmt.Fprintf(b.out, "\n%s\n", title)
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}

func ms(v float64) string { return fmt.Sprintf("%.2f", v) }

func (b *bench) printCost(r costResult) {
	names := make([]string, 0, len(r.RedisByCommand))
	for k := range r.RedisByCommand {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(r.RedisByCommand[k])/float64(r.Writes)))
	}
	b.table(fmt.Sprintf("Cost per write with %d stream(s) attached (%d sequential creates via replica 1)", r.Streams, r.Writes), [][]string{
		{"DB queries/write", "Redis commands/write", "Redis by command (per write)"},
		{fmt.Sprintf("%.2f", r.QueriesPerWrite), fmt.Sprintf("%.2f", r.RedisPerWrite), strings.Join(parts, ", ")},
	})
}

func (b *bench) printThroughput() {
	rows := [][]string{{"", "writers", "creates/s (median)", "rounds", "p50 ms", "p99 ms", "errors", "mean batch", "DB stmts/create", "CPU ms/create: replicas", "loader", "Redis"}}
	for _, t := range b.res.Throughput {
		batch, stmts, cpu, loader, redis := "", "", "", "", ""
		if t.MeanBatch > 0 {
			batch = fmt.Sprintf("%.1f", t.MeanBatch)
		}
		if t.QueriesPerWrite > 0 {
			stmts = fmt.Sprintf("%.2f", t.QueriesPerWrite)
		}
		if t.ReplicaCPUms > 0 {
			cpu = fmt.Sprintf("%.3f", t.ReplicaCPUms)
			loader = fmt.Sprintf("%.3f", t.LoaderCPUms)
			redis = fmt.Sprintf("%.3f", t.RedisCPUms)
		}
		rows = append(rows, []string{t.Name, fmt.Sprint(t.Clients), fmt.Sprintf("%.0f", t.PerSecond), fmt.Sprint(t.Rounds),
			ms(t.Latency.P50), ms(t.Latency.P99), fmt.Sprint(t.Errors), batch, stmts, cpu, loader, redis})
	}
	b.table(fmt.Sprintf("Write throughput (creates; %d rounds of %s, medians)", b.opts.rounds, b.opts.writeTime), rows)
	for _, n := range b.opts.writers {
		var all, plain float64
		for _, t := range b.res.Throughput {
			switch {
			case t.Clients != n && t.Clients != min(n, maxPgbenchClients):
			case t.Name == fmt.Sprintf("bbs via %d replica(s)", b.opts.replicas):
				all = t.PerSecond
			case t.Name == "pgbench, plain single-row insert":
				plain = t.PerSecond
			}
		}
		if plain > 0 {
			fmt.Fprintf(b.out, "%d writers: bbs via %d replicas = %.0f%% of pgbench's plain single-row insert\n", n, b.opts.replicas, 100*all/plain)
		}
	}
}

func (b *bench) printFanout(r fanoutResult) {
	b.table(fmt.Sprintf("Fan-out: %d streams × %d writes/s for %s (write sent → event at each stream)", r.Streams, r.Rate, b.opts.duration), [][]string{
		{"deliveries", "per second", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "missing", "resyncs", "write errors", "CPU s/1000 deliv."},
		{fmt.Sprint(r.Deliveries), fmt.Sprintf("%.0f", r.DeliveriesPerSecond), ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max),
			fmt.Sprint(r.Missing), fmt.Sprint(r.Resyncs), fmt.Sprint(r.WriteErrors), fmt.Sprintf("%.4f", r.CPUPer1000Deliveries)},
	})
	fmt.Fprintf(b.out, "CPU: replicas + Redis %.1f s (Redis %.1f s; in the kernel %.0f%%), loader %.1f s; the write itself (send → 201): p50 %s ms, p99 %s ms\n",
		r.ServerCPUSeconds, r.RedisCPUSeconds, 100*r.KernelShare, r.LoaderCPUSeconds, ms(r.WriteLatency.P50), ms(r.WriteLatency.P99))
	fmt.Fprintf(b.out, "delivery lag on the replicas (bbs_delivery_lag_seconds: COMMIT → frame handed to every socket): p50 %s, p99 %s\n",
		lagText(r.DeliveryLagP50), lagText(r.DeliveryLagP99))
}

func (b *bench) printIdle(r idleResult) {
	b.table(fmt.Sprintf("Idle streams on one fresh replica (%d streams)", r.Streams), [][]string{
		{"RSS before MiB", "RSS after MiB", "KiB/stream", "heap KiB/stream", "goroutines/stream", "streams in 2 GiB", "limited by"},
		{fmt.Sprintf("%.1f", r.RSSBeforeMiB), fmt.Sprintf("%.1f", r.RSSAfterMiB), fmt.Sprintf("%.1f", r.KiBPerStream), fmt.Sprintf("%.1f", r.HeapKiBPerStream),
			fmt.Sprintf("%.2f", r.GoroutinesPerStream), fmt.Sprint(r.StreamsIn2GiB), r.Limit},
	})
}

// save writes the results as JSON: one file per run and latest.json.
func (b *bench) save() error {
	if err := os.MkdirAll(b.opts.out, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(b.res, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(b.opts.out, "bench-"+b.res.Started.Format("20060102-150405")+".json")
	for _, f := range []string{name, filepath.Join(b.opts.out, "latest.json")} {
		if err := os.WriteFile(f, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(b.out, "\nsaved %s (and latest.json) in %.0f s\n", name, b.res.Seconds)
	return nil
}

package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// point is one fan-out load: streams attached and creates per second.
type point struct {
	Streams int `json:"streams"`
	Rate    int `json:"writes_per_second"`
}

type options struct {
	bbs         string // bbs binary
	redisServer string // redis-server binary
	pgbench     string // pgbench binary
	postgres    string // admin URL: throwaway databases are made through it
	out         string // results folder
	replicas    int
	points      []point
	duration    time.Duration // writes at each fan-out point
	idle        int           // idle streams on one replica
	writers     []int         // concurrent writers in the throughput runs
	rounds      int           // throughput runs per figure (the median is kept)
	writeTime   time.Duration // each throughput run
	steps       map[string]bool
	costWrites  int    // sequential writes in the cost runs
	profileDir  string // CPU profiles of replica 1 per fan-out point and writer count ("": none)
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.bbs, "bbs", "bin/bbs", "the bbs binary to run")
	fs.StringVar(&o.redisServer, "redis-server", "redis-server", "the redis-server binary (the bench runs its own)")
	fs.StringVar(&o.pgbench, "pgbench", "pgbench", "the pgbench binary (Debian: apt-get install -y postgresql-contrib)")
	fs.StringVar(&o.postgres, "postgres", cmp.Or(os.Getenv("TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"admin URL of the Postgres server; the bench works in throwaway databases on it")
	fs.StringVar(&o.out, "out", "results", "folder for the JSON results")
	fs.IntVar(&o.replicas, "replicas", 3, "bbs replicas")
	pts := fs.String("points", "1000x50,5000x10,10000x5", "fan-out points: STREAMSxWRITES_PER_SECOND, comma separated, streams increasing")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "writes at each fan-out point")
	fs.IntVar(&o.idle, "idle", 10000, "idle streams held on one replica for the memory figure")
	writers := fs.String("writers", "1,16,128", "concurrent writers in the throughput runs (and pgbench clients), comma separated")
	fs.IntVar(&o.rounds, "rounds", 3, "throughput runs per figure; the median is reported")
	fs.DurationVar(&o.writeTime, "write-time", 4*time.Second, "each throughput run")
	steps := fs.String("steps", strings.Join(allSteps, ","), "the steps to run, comma separated")
	fs.IntVar(&o.costWrites, "cost-writes", 200, "writes counted in each cost run")
	fs.StringVar(&o.profileDir, "profile", "", "save CPU profiles of replica 1 in this folder: one per fan-out point, and one per writer count through every replica")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.points, err = parsePoints(*pts); err != nil {
		return o, err
	}
	for _, f := range strings.Split(*writers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-writers: %q is not a positive count", f)
		}
		o.writers = append(o.writers, n)
	}
	o.steps = map[string]bool{}
	for _, f := range strings.Split(*steps, ",") {
		if f = strings.TrimSpace(f); !slices.Contains(allSteps, f) {
			return o, fmt.Errorf("-steps: %q is none of %s", f, strings.Join(allSteps, ", "))
		}
		o.steps[f] = true
	}
	if o.replicas < 1 || o.rounds < 1 || o.costWrites < 1 || o.idle < 1 {
		return o, fmt.Errorf("-replicas, -rounds, -cost-writes and -idle must be positive")
	}
	return o, nil
}

func parsePoints(s string) ([]point, error) {
	var out []point
	for _, f := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(f), "x")
		n, err1 := strconv.Atoi(a)
		r, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 1 || r < 1 {
			return nil, fmt.Errorf("-points: %q is not STREAMSxRATE like 1000x50", f)
		}
		if len(out) > 0 && n < out[len(out)-1].Streams {
			return nil, fmt.Errorf("-points: streams must not decrease (%q)", s)
		}
		out = append(out, point{Streams: n, Rate: r})
	}
	return out, nil
}

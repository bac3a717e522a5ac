package soak

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// windowLimit is the replicas' SNAPSHOT_LIMIT: small, so that deletes
// make older topics slide into the window all the time.
const windowLimit = 5

const (
	numClients = 6 // the last two read slowly
	numSlow    = 2
	numWriters = 3
)

// harness is one soak run: the cluster, the model, the traffic, the
// faults and everything the report prints.
type harness struct {
	t       *testing.T
	seed    uint64
	dir     string
	journal *journal
	stats   *counters
	div     *divergences
	faults  *faultLog
	cl      *cluster
	model   *model
	chk     *checker
	book    *book
	pg      *pgxpool.Pool // straight to Postgres, never through a proxy
	rdb     *redis.Client
	dup     *duplicator
	stale   *staleCache
	clients []*client
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// settings reads SOAK_TIME (default 45s) and SOAK_SEED (default 1; 0 draws
// one, printed so that the run can be repeated).
func settings(t *testing.T) (time.Duration, uint64) {
	d := 45 * time.Second
	if s := os.Getenv("SOAK_TIME"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			t.Fatalf("SOAK_TIME=%q: want a duration like 10m", s)
		}
	}
	seed := uint64(1)
	if s := os.Getenv("SOAK_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SOAK_SEED=%q: want a number (0: random)", s)
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()%1_000_000_000) + 1
	}
	return d, seed
}

func TestSoak(t *testing.T) {
	dur, seed := settings(t)
	redis.SetLogger(quiet{}) // Redis down is one of the faults; its client need not say so
	t.Logf("soak: SOAK_SEED=%d SOAK_TIME=%v (repeat: SOAK_SEED=%d SOAK_TIME=%v make soak)", seed, dur, seed, dur)
	dir, err := os.MkdirTemp("", "bbs-soak-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	h := &harness{t: t, seed: seed, dir: dir, stats: &counters{}, faults: &faultLog{},
		book: &book{delAt: map[int64]time.Time{}}}
	h.cl = startCluster(t, dir, 3)
	h.journal = &journal{start: time.Now()}
	h.div = &divergences{j: h.journal}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if h.model, err = newModel(ctx, h.cl.dbURL); err != nil {
		t.Fatal(err)
	}
	defer h.model.close()
	h.pg = h.model.db
	h.rdb = redis.NewClient(&redis.Options{Addr: h.cl.redis.addr(), DialTimeout: 500 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1})
	defer h.rdb.Close()
	h.chk = newChecker(h.model, h.div, h.stats)
	h.dup = newDuplicator(h, h.rdb, seed)
	h.stale = newStaleCache(h, h.rdb)

	var bg sync.WaitGroup
	for _, f := range []func(context.Context){h.chk.run, h.dup.run, h.stale.run} {
		bg.Add(1)
		go func() { defer bg.Done(); f(ctx) }()
	}
	for i := range numClients {
		c := newClient(h, i, i >= numClients-numSlow, seed)
		h.clients = append(h.clients, c)
		bg.Add(1)
		go func() { defer bg.Done(); c.run(ctx) }()
	}
	convergence := h.cycles(ctx, dur)
	h.verifyWrites()
	h.verifyPurges(ctx)
	cancel()
	bg.Wait()
	h.report(dur, convergence)
}

// cycles alternates chaos (writes, client churn, faults) with a quiet
// convergence check, until dur has passed.
func (h *harness) cycles(ctx context.Context, dur time.Duration) []time.Duration {
	phases := rand.New(rand.NewPCG(h.seed, 2))
	inj := newInjector(h, h.seed)
	deadline := time.Now().Add(dur)
	var conv []time.Duration
	seen := 0 // writes before this index were seen at a convergence
	for cycle := 1; ; cycle++ {
		left := time.Until(deadline)
		if cycle > 1 && left < 6*time.Second {
			return conv
		}
		chaos := between(phases, 8*time.Second, 15*time.Second)
		if dur >= 2*time.Minute {
			chaos = between(phases, 15*time.Second, 40*time.Second)
		}
		chaos = max(3*time.Second, min(chaos, left-4*time.Second))
		h.journal.add("phase", "cycle %d: chaos for %v", cycle, chaos)
		for _, c := range h.clients {
			c.setChaos(true)
		}
		wctx, stopWriters := context.WithCancel(ctx)
		var writers sync.WaitGroup
		for i := range numWriters {
			w := &writer{h: h, rng: rand.New(rand.NewPCG(h.seed, uint64(10+100*cycle+i))),
				hc: &http.Client{Timeout: requestBound + 5*time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
			writers.Add(1)
			go func() {
				defer writers.Done()
				for wctx.Err() == nil {
					up := h.cl.up()
					if len(up) == 0 {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					w.do(w.pickOp(), up[w.rng.IntN(len(up))])
					time.Sleep(between(w.rng, 10*time.Millisecond, 150*time.Millisecond))
				}
			}()
		}
		fctx, stopFaults := context.WithTimeout(ctx, chaos)
		healCtx, heal := context.WithCancel(ctx)
		inj.run(fctx, healCtx)
		stopFaults()
		heal()
		inj.heal()
		h.ensureUp()
		stopWriters()
		writers.Wait()
		for _, c := range h.clients {
			c.setChaos(false)
		}
		h.journal.add("phase", "cycle %d: faults healed, writes answered; waiting for convergence", cycle)
		d, ok := h.converge(ctx)
		conv = append(conv, d)
		if ok {
			// Every client holds the database's board: every 2xx write is in
			// its view, as an event or inside a snapshot.
			var n int
			n, seen = h.book.acked(seen)
			h.stats.add("checks 2xx writes reflected in every client's view at convergence", int64(n*numClients))
			h.journal.add("phase", "cycle %d: converged in %v", cycle, d.Round(time.Millisecond))
		} else {
			h.journal.add("phase", "cycle %d: NOT converged after %v", cycle, d.Round(time.Millisecond))
		}
		h.verifyWrites()
	}
}

// ensureUp restarts what a fault left down (it should be nothing).
func (h *harness) ensureUp() {
	for _, r := range h.cl.reps {
		switch r.state() {
		case statePaused:
			r.signal(syscall.SIGCONT, stateUp)
		case stateDown, stateDraining:
			h.div.report("harness: replica left down after heal", "%s was %s", r.name, r.state())
			r.kill()
			h.restart(r)
		}
	}
}

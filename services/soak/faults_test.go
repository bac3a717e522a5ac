package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// injector draws faults from its own random stream and applies them, each
// for a drawn duration; heal ends every fault still in force at once.
type injector struct {
	h   *harness
	rng *rand.Rand

	mu   sync.Mutex
	busy map[string]bool // resources a fault holds: rep0, pg0, rp0, redis, cache
	wg   sync.WaitGroup
}

// faultKinds and their weights.
var faultKinds = []struct {
	name   string
	weight int
}{
	{"replica-kill", 2}, {"replica-term", 2}, {"replica-pause", 2},
	{"redis-kill", 1}, {"redis-pause", 1},
	{"pg-reset", 2}, {"pg-hang", 1}, {"pg-down-all", 1},
	{"notice-drop", 2}, {"notice-dup", 2},
	{"prune", 1}, {"prune-under-replica", 2}, {"stale-cache", 2},
}

func newInjector(h *harness, seed uint64) *injector {
	return &injector{h: h, rng: rand.New(rand.NewPCG(seed, 1)), busy: map[string]bool{}}
}

// between draws a duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// run injects faults until ctx ends; faults hold until healCtx ends or
// their duration passes.
func (in *injector) run(ctx, healCtx context.Context) {
	total := 0
	for _, k := range faultKinds {
		total += k.weight
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(between(in.rng, 200*time.Millisecond, 1500*time.Millisecond)):
		}
		n := in.rng.IntN(total)
		for _, k := range faultKinds {
			if n -= k.weight; n < 0 {
				in.try(healCtx, k.name)
				break
			}
		}
	}
}

// hold marks resources busy, or reports false if one already is.
func (in *injector) hold(res ...string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range res {
		if in.busy[r] {
			return false
		}
	}
	for _, r := range res {
		in.busy[r] = true
	}
	return true
}

func (in *injector) release(res ...string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range res {
		delete(in.busy, r)
	}
}

// processFaults counts replicas held by a process fault: at most two at
// once, so that one is always there to serve.
func (in *injector) processFaults() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for i := range in.h.cl.reps {
		if in.busy[fmt.Sprintf("rep%d", i)] {
			n++
		}
	}
	return n
}

// spawn runs a fault's life in the background: apply, wait d or heal, undo.
func (in *injector) spawn(healCtx context.Context, d time.Duration, res []string, body func(wait func())) {
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		defer in.release(res...)
		body(func() {
			select {
			case <-time.After(d):
			case <-healCtx.Done():
			}
		})
	}()
}

// heal waits for every fault to be undone (healCtx must have ended).
func (in *injector) heal() { in.wg.Wait() }

func (in *injector) try(healCtx context.Context, kind string) {
	h := in.h
	rng := in.rng
	ri := rng.IntN(len(h.cl.reps))
	r := h.cl.reps[ri]
	rep, pg, rp := fmt.Sprintf("rep%d", ri), fmt.Sprintf("pg%d", ri), fmt.Sprintf("rp%d", ri)
	d := between(rng, 500*time.Millisecond, 3*time.Second)
	switch kind {
	case "replica-kill", "replica-term", "replica-pause", "prune-under-replica":
		if in.processFaults() >= 2 || r.state() != stateUp || !in.hold(rep) {
			return
		}
	case "redis-kill", "redis-pause":
		if !in.hold("redis") {
			return
		}
	case "pg-reset", "pg-hang":
		if !in.hold(pg) {
			return
		}
	case "pg-down-all":
		var all []string
		for i := range h.cl.reps {
			all = append(all, fmt.Sprintf("pg%d", i))
		}
		if !in.hold(all...) {
			return
		}
		in.spawn(healCtx, d, all, func(wait func()) {
			f := h.begin(kind, classPG, -1, "Postgres unreachable from every replica for %v", d)
			for _, r := range h.cl.reps {
				r.pg.Cut()
			}
			wait()
			for _, r := range h.cl.reps {
				r.pg.Restore()
			}
			h.end(f)
		})
		return
	case "notice-drop":
		if !in.hold(rp) {
			return
		}
	case "notice-dup":
		if !in.hold("dup") {
			return
		}
	case "prune", "stale-cache":
		// instant
	}
	res := map[string][]string{
		"replica-kill": {rep}, "replica-term": {rep}, "replica-pause": {rep}, "prune-under-replica": {rep},
		"redis-kill": {"redis"}, "redis-pause": {"redis"}, "pg-reset": {pg}, "pg-hang": {pg},
		"notice-drop": {rp}, "notice-dup": {"dup"},
	}[kind]
	switch kind {
	case "replica-kill":
		in.spawn(healCtx, d, res, func(wait func()) {
			f := h.begin(kind, classLife, ri, "SIGKILL %s, restart after %v", r.name, d)
			r.kill()
			wait()
			h.restart(r)
			h.end(f)
		})
	case "replica-term":
		in.spawn(healCtx, d, res, func(wait func()) {
			f := h.beginTerm(kind, ri, "SIGTERM %s (drain), restart %v after it exits", r.name, d)
			start := time.Now()
			r.signal(syscall.SIGTERM, stateDraining)
			exited, err := r.wait(drainBound)
			switch {
			case !exited:
				h.div.report("drain: replica did not exit after SIGTERM", "%s still running %v after SIGTERM (DRAIN_DELAY=500ms, SHUTDOWN_GRACE=3s)", r.name, drainBound)
				r.kill()
			case err != nil:
				h.div.report("drain: replica exited with an error after SIGTERM", "%s: %v after %v", r.name, err, time.Since(start))
			default:
				h.stats.inc("drain exits 0")
				h.journal.add("fault", "%s exited 0, %v after SIGTERM", r.name, time.Since(start).Round(time.Millisecond))
			}
			wait()
			h.restart(r)
			h.end(f)
		})
	case "replica-pause":
		in.spawn(healCtx, d, res, func(wait func()) {
			f := h.begin(kind, classLife, ri, "SIGSTOP %s for %v", r.name, d)
			r.signal(syscall.SIGSTOP, statePaused)
			wait()
			r.signal(syscall.SIGCONT, stateUp)
			h.end(f)
		})
	case "redis-kill":
		in.spawn(healCtx, d, res, func(wait func()) {
			f := h.begin(kind, classOther, -1, "SIGKILL redis-server, restart after %v", d)
			h.cl.redis.kill()
			wait()
			if err := h.cl.redis.start(); err != nil {
				h.div.report("harness: redis-server restart failed", "%v", err)
			}
			h.end(f)
		})
	case "redis-pause":
		in.spawn(healCtx, d, res, func(wait func()) {
			f := h.begin(kind, classOther, -1, "SIGSTOP redis-server for %v", d)
			h.cl.redis.signal(syscall.SIGSTOP)
			wait()
			h.cl.redis.signal(syscall.SIGCONT)
			h.end(f)
		})
	case "pg-reset", "pg-hang":
		in.spawn(healCtx, d, res, func(wait func()) {
			if kind == "pg-reset" {
				f := h.begin(kind, classPG, ri, "reset %s's Postgres connections for %v", r.name, d)
				r.pg.Cut()
				wait()
				r.pg.Restore()
				h.end(f)
				return
			}
			f := h.begin(kind, classPG, ri, "hang %s's Postgres connections for %v", r.name, d)
			r.pg.Freeze()
			wait()
			r.pg.Restore()
			h.end(f)
		})
	case "notice-drop":
		d = between(rng, 200*time.Millisecond, 1500*time.Millisecond)
		cut := rng.IntN(2) == 0
		in.spawn(healCtx, d, res, func(wait func()) {
			how := "hang"
			if cut {
				how = "cut"
			}
			f := h.begin(kind, classOther, ri, "%s %s's Redis connections for %v (notices lost to it)", how, r.name, d)
			if cut {
				r.rp.Cut()
			} else {
				r.rp.Freeze()
			}
			wait()
			r.rp.Restore()
			h.end(f)
		})
	case "notice-dup":
		in.spawn(healCtx, d, res, func(wait func()) {
			f := h.begin(kind, classOther, -1, "duplicate and delay pub/sub notices for %v", d)
			h.dup.setActive(true)
			wait()
			h.dup.setActive(false)
			h.end(f)
		})
	case "prune":
		back := int64(rng.IntN(30))
		h.stats.inc("faults prune")
		h.prune(func(last int64) int64 { return max(0, last-back) })
	case "prune-under-replica":
		viaRedis := rng.IntN(2) == 0
		in.spawn(healCtx, d, res, func(wait func()) {
			how, class := "SIGSTOP", classLife
			if viaRedis {
				how, class = "cut Redis of", classOther
			}
			f := h.begin(kind, class, ri, "%s %s, prune the change log under it, resume after %v", how, r.name, d)
			if viaRedis {
				r.rp.Cut()
			} else {
				r.signal(syscall.SIGSTOP, statePaused)
			}
			time.Sleep(d / 2) // writes go on meanwhile: it falls behind
			h.prune(func(last int64) int64 { return last })
			wait()
			if viaRedis {
				r.rp.Restore()
			} else {
				r.signal(syscall.SIGCONT, stateUp)
			}
			h.end(f)
		})
	case "stale-cache":
		h.stale.putBack(rng)
	}
}

// restart starts r again as an orchestrator would: a process that exits
// while starting is started again, every 500 ms, for up to 30 s.
func (h *harness) restart(r *replica) {
	h.journal.add("fault", "restart %s", r.name)
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := r.start()
		if err == nil {
			return
		}
		pg := h.faults.overlapping(classPG, r.idx, time.Now(), time.Now(), 0)
		h.journal.add("fault", "%v (Postgres faults in force: %d)", err, len(pg))
		h.div.report("replica exits when started (orchestrator restarts it)",
			"%v; Postgres faults in force: %v; last log line: %s", err, kinds(pg), lastLine(r.logPath()))
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func kinds(fs []faultRec) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.kind)
	}
	return out
}

// lastLine is the last line of a file, for a report.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return short(lines[len(lines)-1], 300)
}

// drainBound is how long a SIGTERMed replica may take to exit:
// DRAIN_DELAY (500ms) and SHUTDOWN_GRACE (3s), plus slack for a busy
// machine.
const drainBound = 5500 * time.Millisecond

// begin records a fault in the journal, the counters and the fault log.
func (h *harness) begin(kind, class string, rep int, format string, args ...any) *faultRec {
	h.journal.add("fault", format, args...)
	h.stats.inc("faults " + kind)
	return h.faults.begin(kind, class, rep, false)
}

// beginTerm records a SIGTERM: requests in flight when it comes must still
// be answered.
func (h *harness) beginTerm(kind string, rep int, format string, args ...any) *faultRec {
	h.journal.add("fault", format, args...)
	h.stats.inc("faults " + kind)
	return h.faults.begin(kind, classLife, rep, true)
}

func (h *harness) end(f *faultRec) {
	h.faults.finish(f)
	h.journal.add("fault", "end %s (rep %d) after %v", f.kind, f.rep, time.Since(f.start).Round(time.Millisecond))
}

// prune deletes the change log up to a version pick draws from the last
// version read (the model reads the log first).
func (h *harness) prune(pick func(last int64) int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	upTo, n, err := h.model.prune(ctx, pick)
	if err != nil {
		h.journal.add("fault", "prune failed: %v", err)
		return
	}
	h.journal.add("fault", "pruned the change log up to version %d (%d entries)", upTo, n)
}

package soak

import (
	"fmt"
	"sync"
	"time"
)

// What docs/ARCHITECTURE.md's "When things fail" lets a request see, and which fault
// in force explains it. Anything else (a 500, a 5xx with no fault to
// explain it, a request that hangs past requestBound) is a failure.

// requestBound is how long any request may take unless its replica was
// paused while it ran.
const requestBound = 10 * time.Second

// grace is how long after a fault ends its effects may still be seen: a
// connection pool holding connections the proxy reset, a query that was
// waiting on a hung connection when it was restored.
const (
	pgGrace   = 4 * time.Second
	lifeGrace = 1 * time.Second
	idleGrace = 6 * time.Second // Postgres ends a stopped writer's session after 5 s
)

// fault classes, by what they may explain.
const (
	classPG    = "postgres" // 503 unavailable / outcome_unknown on writes
	classLife  = "process"  // refused connections, not_ready, hangs
	classOther = "other"    // explains nothing: the server must absorb it
)

// faultRec is one fault in force on one replica (rep -1: all of them).
type faultRec struct {
	kind  string
	class string
	rep   int
	term  bool // SIGTERM: requests in flight when it came must be answered
	start time.Time
	end   time.Time // zero while in force
}

type faultLog struct {
	mu   sync.Mutex
	recs []*faultRec
}

func (l *faultLog) begin(kind, class string, rep int, term bool) *faultRec {
	r := &faultRec{kind: kind, class: class, rep: rep, term: term, start: time.Now()}
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
	return r
}

func (l *faultLog) finish(r *faultRec) {
	l.mu.Lock()
	r.end = time.Now()
	l.mu.Unlock()
}

// overlapping returns the faults of class on rep whose span, widened by
// grace, overlaps [from, to].
func (l *faultLog) overlapping(class string, rep int, from, to time.Time, grace time.Duration) []faultRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []faultRec
	for _, r := range l.recs {
		if r.class != class || (r.rep != rep && r.rep != -1) {
			continue
		}
		end := r.end
		if end.IsZero() {
			end = time.Now()
		}
		if r.start.Before(to) && end.Add(grace).After(from) {
			out = append(out, *r)
		}
	}
	return out
}

// stoppedAnywhere names a replica pause, on any replica, that overlaps
// [from, to] give or take the store's idle-in-transaction bound.
func (l *faultLog) stoppedAnywhere(from, to time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		stops := r.kind == "replica-pause" || r.kind == "prune-under-replica" && r.class == classLife // its SIGSTOP form
		if !stops {
			continue
		}
		end := r.end
		if end.IsZero() {
			end = time.Now()
		}
		if r.start.Before(to) && end.Add(idleGrace).After(from) {
			return fmt.Sprintf("replica-pause on r%d (holds the version row's lock)", r.rep+1)
		}
	}
	return ""
}

// outcome is what one request got.
type outcome struct {
	status int    // 0: no HTTP answer
	code   string // error code of a 4xx/5xx
	err    error  // transport error or timeout
	start  time.Time
	took   time.Duration
}

// explain says why an answer that is not the expected one is acceptable
// under the faults in force on replica rep, or "" when nothing explains it.
// needsDB is false for what must go on from memory with Postgres down (the
// first page, streams): only writes and older pages may answer 503 then.
func (l *faultLog) explain(rep int, o outcome, needsDB bool) string {
	from, to := o.start, o.start.Add(o.took)
	life := l.overlapping(classLife, rep, from, to, lifeGrace)
	lifeWhy := func(transport bool) string {
		for _, f := range life {
			if transport && f.term && from.Before(f.start) {
				// Was in flight when SIGTERM came: a drain must answer it.
				continue
			}
			return f.kind
		}
		return ""
	}
	switch {
	case o.err != nil || o.status == 0:
		return lifeWhy(true)
	case o.took > requestBound:
		return lifeWhy(true)
	case o.status == 503 && needsDB && (o.code == "unavailable" || o.code == "outcome_unknown"):
		if pg := l.overlapping(classPG, rep, from, to, pgGrace); len(pg) > 0 {
			return pg[0].kind
		}
		// A replica stopped in the middle of a write holds the version
		// row's lock, and writes on every replica wait behind it until it
		// resumes or Postgres ends its idle session (5 s, pkg/store).
		if p := l.stoppedAnywhere(from, to); p != "" {
			return p
		}
	case o.status == 503 && (o.code == "not_ready" || o.code == "draining"):
		return lifeWhy(false)
	}
	return ""
}

// during names every fault in force anywhere during [from, to], for the
// report of an answer nothing on its own replica explains.
func (l *faultLog) during(from, to time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		end := r.end
		if end.IsZero() {
			end = time.Now()
		}
		if r.start.Before(to) && end.After(from) {
			out = append(out, fmt.Sprintf("%s(rep %d)", r.kind, r.rep))
		}
	}
	return out
}

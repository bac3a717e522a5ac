package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/redis/go-redis/v9"
)

// convergeBound is how long, once the faults stop and the writes are
// answered, every replica, the cache and every client may take to hold
// the database's board.
const convergeBound = 20 * time.Second

// converge waits until every replica's first page, the Redis cache and
// every client's view equal the database's board at its current version,
// and returns how long that took, or reports what still differs after
// convergeBound.
func (h *harness) converge(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	var lag []string
	for time.Since(start) < convergeBound {
		lag = h.lagging(ctx)
		if len(lag) == 0 {
			d := time.Since(start)
			h.stats.inc("checks convergence rounds")
			return d, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.div.report("no convergence after the faults stopped",
		"still different from the database %v after the faults stopped and the writes were answered:\n  %s",
		convergeBound, strings.Join(lag, "\n  "))
	return time.Since(start), false
}

// lagging lists what does not hold the database's board right now.
func (h *harness) lagging(ctx context.Context) []string {
	dbv, err := h.model.dbVersion(ctx)
	if err != nil {
		return []string{"database: " + err.Error()}
	}
	if err := h.model.sync(ctx); err != nil {
		return []string{"model: " + err.Error()}
	}
	want, ok := h.model.page(dbv, windowLimit, 0)
	if !ok {
		return []string{fmt.Sprintf("model: version %d unknown", dbv)}
	}
	var out []string
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, r := range h.cl.reps {
		resp, err := hc.Get(r.url() + "/api/topics")
		if err != nil {
			out = append(out, fmt.Sprintf("%s (%s): %v", r.name, r.state(), err))
			continue
		}
		var l wire.List
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			out = append(out, fmt.Sprintf("%s: GET /api/topics %d %v", r.name, resp.StatusCode, err))
		} else if l.Version != dbv || !sameTopics(want, l.Topics) {
			out = append(out, fmt.Sprintf("%s: first page at version %d (database %d)\n%s", r.name, l.Version, dbv, diffTopics(want, l.Topics)))
		}
	}
	if s := h.cacheLag(ctx, dbv, want); s != "" {
		out = append(out, s)
	}
	for _, c := range h.clients {
		on, has, v, view := c.state()
		switch {
		case on == "":
			out = append(out, c.name+": not connected")
		case !has || v != dbv || !sameTopics(want, view):
			out = append(out, fmt.Sprintf("%s on %s: view at version %d (database %d)\n%s", c.name, on, v, dbv, diffTopics(want, view)))
		}
	}
	if n := h.chk.pending(); n > 0 {
		out = append(out, fmt.Sprintf("checker: %d observations not checked yet", n))
	}
	return out
}

// cacheLag describes how the Redis cache differs from the board at dbv;
// an empty cache (Redis restarted and no write since) is no stale data.
func (h *harness) cacheLag(ctx context.Context, dbv int64, want []wire.Topic) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := h.rdb.HGetAll(ctx, h.cl.prefix+":snapshot").Result()
	if err == redis.Nil || (err == nil && m["v"] == "") {
		h.stats.inc("convergence polls with an empty Redis cache")
		return ""
	}
	if err != nil {
		return "redis: " + err.Error()
	}
	v, _ := strconv.ParseInt(m["v"], 10, 64)
	var l wire.List
	if err := json.Unmarshal([]byte(m["d"]), &l); err != nil {
		return fmt.Sprintf("cache: version %s, undecodable: %v", m["v"], err)
	}
	if v != dbv || l.Version != dbv || !sameTopics(want, l.Topics) {
		return fmt.Sprintf("Redis cache: version %d (list says %d, database %d)\n%s", v, l.Version, dbv, diffTopics(want, l.Topics))
	}
	return ""
}

package limit

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeline sends the limiter's scripts (EVALSHA, and EVAL when Redis has
// forgotten the script) in pipelines: every write asks the limiter, and
// under load a round trip each was the largest single cost of a write on
// a replica (17% of its CPU at 128 writers, mostly the write(2)). The
// scripts that arrive while one pipeline is out go together in the next
// one. A lone write still costs one round trip, with one goroutine hand-off
// on top.
//
// It is the rediser redis_rate runs its GCRA script through; everything
// but EVAL and EVALSHA goes straight to the client.
type pipeline struct {
	redis.UniversalClient

	mu      sync.Mutex
	queue   []*scriptCall
	flusher bool // a flush goroutine is running; it drains queue
}

type scriptCall struct {
	cmd  *redis.Cmd
	done chan struct{} // closed once cmd holds Redis's answer
}

// flushTimeout bounds one pipeline's round trip. Callers stop waiting at
// their own deadline (the API's limiter timeout, 200 ms) and go on without
// the answer; this only ends the flush.
const flushTimeout = time.Second

func (p *pipeline) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.do(ctx, append([]any{"eval", script, len(keys)}, scriptArgs(keys, args)...))
}

func (p *pipeline) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.do(ctx, append([]any{"evalsha", sha1, len(keys)}, scriptArgs(keys, args)...))
}

func scriptArgs(keys []string, args []any) []any {
	out := make([]any, 0, len(keys)+len(args))
	for _, k := range keys {
		out = append(out, k)
	}
	return append(out, args...)
}

// do queues the command for the next pipeline and waits for its answer or
// for ctx. A caller that stops waiting gets ctx's error in a command of
// its own: the queued one is still written to by the flush.
func (p *pipeline) do(ctx context.Context, args []any) *redis.Cmd {
	c := &scriptCall{cmd: redis.NewCmd(ctx, args...), done: make(chan struct{})}
	p.mu.Lock()
	p.queue = append(p.queue, c)
	if !p.flusher {
		p.flusher = true
		go p.flush()
	}
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
		gone := redis.NewCmd(ctx, args...)
		gone.SetErr(ctx.Err())
		return gone
	}
}

// flush sends what is queued, one pipeline at a time, until nothing is.
func (p *pipeline) flush() {
	for {
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		if len(batch) == 0 {
			p.flusher = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		// Each command gets its own answer or error; Pipelined's error is
		// only the first of them.
		_, _ = p.UniversalClient.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, c := range batch {
				_ = pipe.Process(ctx, c.cmd)
			}
			return nil
		})
		cancel()
		for _, c := range batch {
			close(c.done)
		}
	}
}

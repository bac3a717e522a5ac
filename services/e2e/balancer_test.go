package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// balancer is the load balancer the page talks to in the failover test: a
// round-robin reverse proxy over the replicas, as small as one can be while
// behaving like the real ones in what matters here:
//   - SSE passes through unbuffered (FlushInterval -1);
//   - a backend that refuses connections is marked down and the request
//     goes to the next one (a refused dial sent nothing, so any request can
//     be retried); a health probe brings it back when it answers again;
//   - it counts the open streams per backend, so the test knows which
//     replica a page is attached to.
type balancer struct {
	URL      string
	backends []*backend
	next     atomic.Uint64
	base     http.RoundTripper
}

type backend struct {
	id      string
	host    string
	down    atomic.Bool
	streams atomic.Int64
}

func startBalancer(t *testing.T, replicas []*testenv.Replica) *balancer {
	t.Helper()
	b := &balancer{base: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
	for _, r := range replicas {
		b.backends = append(b.backends, &backend{id: r.ID, host: r.Addr})
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The real host is chosen per attempt in RoundTrip.
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend"
			pr.SetXForwarded()
		},
		Transport:     b,
		FlushInterval: -1, // SSE: every event goes out at once
		// A killed backend cuts its streams mid-body; that is expected here.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(proxy)
	b.URL = srv.URL

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.probe(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.CloseClientConnections()
		srv.Close()
	})
	return b
}

// pick returns the next backend that is not marked down, round-robin.
func (b *balancer) pick() *backend {
	n := uint64(len(b.backends))
	for range n {
		be := b.backends[b.next.Add(1)%n]
		if !be.down.Load() {
			return be
		}
	}
	return nil
}

var errNoBackend = errors.New("balancer: no backend is up")

// RoundTrip sends the request to a live backend, moving on to the next
// one when a backend refuses the connection.
func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	// The transport closes a request's body even when the dial fails, so a
	// body is read once here and handed to each attempt afresh. The API's
	// bodies are small (64 KiB at most).
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, 1<<20))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	for range b.backends {
		be := b.pick()
		if be == nil {
			break
		}
		out := req.Clone(req.Context())
		out.URL.Host = be.host
		out.Host = be.host
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		res, err := b.base.RoundTrip(out)
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				be.down.Store(true)
				continue
			}
			return nil, err
		}
		if req.URL.Path == "/api/topics/stream" && res.StatusCode == http.StatusOK {
			be.streams.Add(1)
			res.Body = &countedBody{ReadCloser: res.Body, n: &be.streams}
		}
		return res, nil
	}
	return nil, errNoBackend
}

// probe brings backends marked down back once their /healthz answers.
func (b *balancer) probe(ctx context.Context) {
	client := &http.Client{Timeout: 200 * time.Millisecond}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, be := range b.backends {
			if !be.down.Load() {
				continue
			}
			if res, err := client.Get("http://" + be.host + "/healthz"); err == nil {
				res.Body.Close()
				be.down.Store(res.StatusCode != http.StatusOK)
			}
		}
	}
}

// streams returns the number of open streams per backend id.
func (b *balancer) streams() map[string]int64 {
	out := map[string]int64{}
	for _, be := range b.backends {
		out[be.id] = be.streams.Load()
	}
	return out
}

// countedBody counts a stream as closed once, when the proxy is done with it.
type countedBody struct {
	io.ReadCloser
	n    *atomic.Int64
	once sync.Once
}

func (c *countedBody) Close() error {
	c.once.Do(func() { c.n.Add(-1) })
	return c.ReadCloser.Close()
}

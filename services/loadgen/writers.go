package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// writers create topics from many source addresses, one keep-alive HTTP
// client per address. Each comment is "bench <send time in ns>" so every
// stream can compute the latency of the event it gets.
type writers struct {
	clients []*http.Client
}

func newWriters(srcs []netip.Addr) *writers {
	w := &writers{}
	for _, src := range srcs {
		d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 5 * time.Second}
		w.clients = append(w.clients, &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				DialContext:         d.DialContext,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     time.Minute,
			},
		})
	}
	return w
}

// create posts one topic through target (host:port) and returns how long
// the answer took.
func (w *writers) create(ctx context.Context, target string) (time.Duration, error) {
	c := w.clients[rand.IntN(len(w.clients))]
	start := time.Now()
	body := `{"comment":"bench ` + strconv.FormatInt(start.UnixNano(), 10) + `"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+target+"/api/topics", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("create via %s: %s", target, resp.Status)
	}
	return time.Since(start), nil
}

func (w *writers) close() {
	for _, c := range w.clients {
		c.CloseIdleConnections()
	}
}

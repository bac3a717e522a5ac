package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// internalListener serves what only operators may see (api's
// InternalHandler: metrics, readiness details; pprof with PPROF=on) on
// INTERNAL_ADDR, never on the public port: metrics and error texts name
// internal hosts, and profiles expose internals and cost CPU while they
// run. Nothing routes the public to it: the load balancer, the Ingress
// and the HTTPRoute all proxy to the public port only.
type internalListener struct {
	ln  net.Listener
	srv *http.Server
}

// listenInternal binds addr and serves h on it until close.
func listenInternal(addr string, h http.Handler, log *slog.Logger) (*internalListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		// No WriteTimeout: a CPU profile answers after its ?seconds=.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("internal listener stopped", "err", err)
		}
	}()
	return &internalListener{ln: ln, srv: srv}, nil
}

// addr is the bound address, "off" when there is no listener.
func (l *internalListener) addr() string {
	if l == nil {
		return "off"
	}
	return l.ln.Addr().String()
}

func (l *internalListener) close() {
	if l != nil {
		_ = l.srv.Close()
	}
}

// pprofRoutes adds net/http/pprof under /debug/pprof/.
func pprofRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

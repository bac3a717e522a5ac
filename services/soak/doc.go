// Package soak is the randomized model test of the whole cluster (issue
// 10): three real bbs processes on a real Postgres and a redis-server of
// its own, random writes and SSE clients, and faults injected from a
// schedule drawn from a printed seed. Every client's view, every page and
// the Redis cache are compared with a model built from the database's
// change log, at the version each claims.
//
//	make soak                              # SOAK_TIME=10m, a random seed (printed)
//	SOAK_SEED=7 SOAK_TIME=2m make soak     # repeat a run
//	go test -run TestSoak ./services/soak  # what make test runs: 45s, seed 1
//
// SOAK_BBS (or BBS_BIN, as the e2e and deploy tests take it too)
// names a bbs binary to run instead of building services/bbs from the
// working tree. The seed fixes every random choice (which
// operation, replica, fault, duration, when a client leaves); the
// processes' own timing is not fixed, so a repeated run follows the same
// plan but may interleave differently.
//
// Files: cluster (processes and proxies), faults and explain (what is
// injected and which answers a fault excuses), notices (pub/sub copies,
// stale cache), model (the board at every version, from the log), check
// (views against the model), clients (SSE), writes and verify (requests
// and their traces in the log), converge, soak (the run), report and
// summary. The test is all in _test.go files.
package soak

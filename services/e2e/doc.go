// Package e2e holds the board's end-to-end tests: real bbs processes on a
// throwaway Postgres database and a Redis key prefix of their own, a load
// balancer in front of them, and the page driven in headless Chromium
// through the DevTools protocol (chromedp).
//
// The package has no code outside its tests; this file only carries the
// package comment, so that `go build ./...` and `go vet` accept the module.
//
// Run it with `make e2e`, or `go test ./...` in this directory. It needs
// Chromium at /usr/bin/chromium (Debian: apt-get install -y chromium), and
// Postgres and Redis as for `make test` (TEST_DATABASE_URL, TEST_REDIS_URL).
// Screenshots of the page go to screenshots/ at the top of the repository.
package e2e

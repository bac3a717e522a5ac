// Package imagetest builds the bbs image from the repository's Dockerfile
// with a real container engine (podman) and runs it the way
// docker-compose.yml and the Kubernetes Deployment do: non-root, read-only,
// no capabilities, `bbs migrate` first, then three replicas against one
// Postgres and one Redis, checked through the image's own HEALTHCHECK and
// a post on one replica reaching a stream on another; and a replica stopped
// by the engine (SIGTERM to PID 1) exits 0.
//
// The package has no code outside its tests; this file only carries the
// package comment, so that `go build ./...` and `go vet` accept the module.
//
// It is a module of its own, outside `make test` (which lists every module
// but this one and services/e2e), because it needs root, podman, runc and
// debootstrap and takes minutes; `make image-test` runs it. Being a module
// rather than a build-tagged file keeps it under `go vet`, staticcheck and
// govulncheck with everything else, and it never shows up as a skipped
// test: without podman it fails with the command that installs it.
//
// No registry is reachable from where it runs, so bases.sh first makes the
// two base images the Dockerfile names (golang:1.26 and distroless
// static-debian12:nonroot) in the local store and keeps them for the next
// run.
package imagetest

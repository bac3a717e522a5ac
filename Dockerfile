# syntax=docker/dockerfile:1
# The bbs image: built from the Go workspace, run as a static binary on
# distroless (no shell, no package manager, non-root).
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t bbs .
#
# services/deploytest runs this file's COPY and `go build` steps outside
# Docker, from a copy holding only what is copied here.

# The builder runs on the build machine's platform and cross-compiles
# (pure Go, no cgo), so multi-platform builds need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src

# The workspace, so the image is built with exactly the module versions
# `make build` uses. Go refuses to load go.work unless every module it
# lists is present, so services/ is copied whole: a module added to go.work
# needs no change here. (.dockerignore leaves tests and test data out.)
# No separate `go mod download` layer: the cache mounts below keep modules
# between builds anyway.
COPY go.work go.work.sum ./
COPY pkg/ pkg/
COPY services/ services/

ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# Cache mounts keep downloaded modules and compiled packages between builds.
# -tags nomsgpack: gin's MessagePack codec, which bbs never uses, stays out
# of the binary (the Makefile's GOTAGS).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -tags nomsgpack -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bbs ./services/bbs

# static-debian12: CA certificates, tzdata and /etc/passwd, nothing else.
# :nonroot runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="bbs" \
      org.opencontainers.image.description="A real-time bulletin board: gin replicas, Postgres, Redis pub/sub, Server-Sent Events" \
      org.opencontainers.image.source="https://github.com/bbsboard/bbs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/bbs /bbs
USER 65532:65532
EXPOSE 8080
# No shell in the image: the binary probes its own /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/bbs", "healthcheck"]
ENTRYPOINT ["/bbs"]

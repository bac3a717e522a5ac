// Package deploytest holds the tests of the deployment files: the
// Dockerfile, docker-compose.yml, the kustomize overlays under k8s/ and the
// load balancer of `make cluster`. README's Configuration table, and the
// variables compose and k8s set, are held to pkg/config's table of
// settings. It has no code of its own to ship.
package deploytest

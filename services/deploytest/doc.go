// Package deploytest holds the tests of the deployment files: the
// Dockerfile, docker-compose.yml, the kustomize overlays under k8s/ and the
// load balancer of `make cluster`. It has no code of its own to ship.
package deploytest

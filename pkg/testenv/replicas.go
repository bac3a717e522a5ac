package testenv

import (
	"context"
	"testing"
)

// NewUnstartedReplica is NewReplica for a test: it fails the test on
// error, kills the process when the test ends and, if the test failed,
// logs the replica's last lines.
func NewUnstartedReplica(t testing.TB, spec ReplicaSpec) *Replica {
	t.Helper()
	r, err := NewReplica(spec)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		r.Kill()
		if t.Failed() {
			t.Logf("--- log of replica %s (last lines) ---\n%s", r.ID, r.Tail(40))
		}
	})
	return r
}

// StartReplica starts a replica for a test and waits until it is ready.
func StartReplica(t testing.TB, spec ReplicaSpec) *Replica {
	t.Helper()
	return StartReplicas(t, spec)[0]
}

// StartReplicas starts one replica per spec side by side and waits until
// every one is ready.
func StartReplicas(t testing.TB, specs ...ReplicaSpec) []*Replica {
	t.Helper()
	rs := make([]*Replica, len(specs))
	for i, spec := range specs {
		rs[i] = NewUnstartedReplica(t, spec)
	}
	if err := StartAll(context.Background(), rs...); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return rs
}

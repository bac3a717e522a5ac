package deploytest

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// replica is a bbs process the test started, on ports of its own so it
// can be stopped and started again behind the same load balancer entry.
type replica struct {
	*testenv.Replica
	t testing.TB
}

// newReplica prepares a replica; env holds the server's variables.
func newReplica(t testing.TB, id string, env map[string]string) *replica {
	t.Helper()
	var names, kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
		names = append(names, k)
	}
	checkServerEnv(t, "the test's replica", names)
	spec := testenv.ReplicaSpec{ID: id, Bin: testenv.BBS(t), Env: kv, Ready: 15 * time.Second}
	return &replica{Replica: testenv.NewUnstartedReplica(t, spec), t: t}
}

// startReplicas starts replicas bbs-1 to bbs-n with env side by side and
// waits until every one is ready.
func startReplicas(t testing.TB, n int, env map[string]string) []*replica {
	t.Helper()
	var rs []*replica
	var procs []*testenv.Replica
	for i := range n {
		r := newReplica(t, fmt.Sprintf("bbs-%d", i+1), env)
		rs, procs = append(rs, r), append(procs, r.Replica)
	}
	if err := testenv.StartAll(context.Background(), procs...); err != nil {
		t.Fatal(err)
	}
	return rs
}

// start runs the process and waits until /readyz answers 200.
func (r *replica) start() {
	r.t.Helper()
	if err := r.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// terminate sends SIGTERM, as Kubernetes does, and returns how long the
// drain took; the process must exit 0 within the given time.
func (r *replica) terminate(within time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	if err := r.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	exited, err := r.Wait(within)
	if !exited {
		r.t.Fatalf("%s did not exit within %v of SIGTERM\n%s", r.ID, within, r.Tail(15))
	}
	if err != nil {
		r.t.Errorf("%s exited with %v after SIGTERM, want 0\n%s", r.ID, err, r.Tail(15))
	}
	return time.Since(start)
}

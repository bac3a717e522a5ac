package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ReplicaSpec says how to run one bbs replica process.
type ReplicaSpec struct {
	// ID is the replica's REPLICA_ID and its name in errors.
	ID string
	// Bin is the program: a bbs binary (BuildBBS), or one that serves as
	// bbs does (a test binary running itself). Args go before nothing
	// else: none runs the server.
	Bin  string
	Args []string
	// Env is the replica's settings, KEY=value. The process gets these,
	// PATH and HOME, and HTTP_ADDR, INTERNAL_ADDR and REPLICA_ID, which
	// the launcher sets; nothing else from the caller's environment.
	Env []string
	// Port and InternalPort are the loopback ports of the public and the
	// internal listener; 0 picks a free one. Either way a replica keeps
	// its ports across restarts, as one behind a load balancer does.
	Port, InternalPort int
	// LogFile, if set, receives the replica's output, appended across
	// restarts; otherwise it is kept in memory. Logs returns it either way.
	LogFile string
	// Ready bounds Start's wait for /readyz to answer 200 (default 20 s).
	Ready time.Duration
}

// Replica is a bbs process that can be started, signalled, stopped and
// started again on the same ports.
type Replica struct {
	ID       string
	URL      string // http://Addr
	Addr     string // 127.0.0.1:port of the public listener
	Internal string // 127.0.0.1:port of the internal one: /metrics, readiness details

	spec ReplicaSpec
	mem  *LockedBuffer // the output, when spec.LogFile is ""

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
	exit error         // cmd's exit status, set before done is closed
}

// NewReplica prepares a replica without starting it; its ports are
// chosen now.
func NewReplica(spec ReplicaSpec) (*Replica, error) {
	if spec.Bin == "" {
		return nil, fmt.Errorf("replica %s: no program to run", spec.ID)
	}
	for _, p := range []*int{&spec.Port, &spec.InternalPort} {
		if *p == 0 {
			port, err := freePort()
			if err != nil {
				return nil, fmt.Errorf("replica %s: %w", spec.ID, err)
			}
			*p = port
		}
	}
	if spec.Ready == 0 {
		spec.Ready = 20 * time.Second
	}
	r := &Replica{
		ID:       spec.ID,
		Addr:     "127.0.0.1:" + strconv.Itoa(spec.Port),
		Internal: "127.0.0.1:" + strconv.Itoa(spec.InternalPort),
		spec:     spec,
	}
	r.URL = "http://" + r.Addr
	if spec.LogFile == "" {
		r.mem = &LockedBuffer{}
	}
	return r, nil
}

// Launch starts the process and returns at once; WaitReady waits for it.
func (r *Replica) Launch() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runningLocked() {
		return fmt.Errorf("replica %s: already running", r.ID)
	}
	cmd := exec.Command(r.spec.Bin, r.spec.Args...)
	cmd.Env = append(append(baseEnv(), r.spec.Env...),
		"HTTP_ADDR="+r.Addr, "INTERNAL_ADDR="+r.Internal, "REPLICA_ID="+r.ID)
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = 5 * time.Second // the output's copying cannot hold Wait up for long
	if r.mem != nil {
		cmd.Stdout, cmd.Stderr = r.mem, r.mem
	} else {
		f, err := os.OpenFile(r.spec.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("replica %s: %w", r.ID, err)
		}
		defer f.Close() // the child has its own descriptor
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start replica %s: %w", r.ID, err)
	}
	done := make(chan struct{})
	r.cmd, r.done, r.exit = cmd, done, nil
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		r.exit = err
		r.mu.Unlock()
		close(done)
	}()
	return nil
}

// WaitReady waits until /readyz answers 200, for at most the spec's Ready.
// It fails at once if the process exits meanwhile.
func (r *Replica) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.spec.Ready)
	defer cancel()
	done := r.Exited()
	cl := &http.Client{Timeout: time.Second} // a paused process must not hold the wait
	for {
		select {
		case <-done:
			_, err := r.Wait(0)
			return fmt.Errorf("replica %s exited while starting: %v\n%s", r.ID, err, r.Tail(20))
		default:
		}
		if ready(ctx, cl, r.URL+"/readyz") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s not ready within %v: %w\n%s", r.ID, r.spec.Ready, ctx.Err(), r.Tail(20))
		case <-done:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, cl *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := cl.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Start launches the process and waits until it is ready.
func (r *Replica) Start(ctx context.Context) error {
	if err := r.Launch(); err != nil {
		return err
	}
	return r.WaitReady(ctx)
}

// StartAll starts every replica side by side (each takes a moment to load
// its first page) and waits until all are ready.
func StartAll(ctx context.Context, rs ...*Replica) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Signal sends sig to the running process.
func (r *Replica) Signal(sig os.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.runningLocked() {
		return fmt.Errorf("replica %s: not running", r.ID)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("replica %s: %v: %w", r.ID, sig, err)
	}
	return nil
}

// Wait waits up to within for the process to exit, and returns its exit
// status (nil for a clean exit 0). A replica never started has exited.
func (r *Replica) Wait(within time.Duration) (exited bool, err error) {
	done := r.Exited()
	select {
	case <-done:
	default:
		if within <= 0 {
			return false, nil
		}
		select {
		case <-done:
		case <-time.After(within):
			return false, nil
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return true, r.exit
}

// Stop sends SIGTERM, as an orchestrator does, and waits up to grace for
// the process to drain and exit; then it kills it. It returns the exit
// status, or an error saying the process had to be killed.
func (r *Replica) Stop(grace time.Duration) error {
	if err := r.Signal(syscall.SIGTERM); err != nil {
		return nil // not running
	}
	if exited, err := r.Wait(grace); exited {
		return err
	}
	r.Kill()
	return fmt.Errorf("replica %s did not exit within %v of SIGTERM", r.ID, grace)
}

// Kill ends the process with SIGKILL (a crash: no draining) and waits for
// it to go. SIGKILL ends a stopped (SIGSTOP) process too.
func (r *Replica) Kill() {
	if r.Signal(syscall.SIGKILL) == nil {
		r.Wait(10 * time.Second)
	}
}

// Exited is closed once the process last launched has exited.
func (r *Replica) Exited() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return r.done
}

// Running says whether the process last launched is still there.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runningLocked()
}

func (r *Replica) runningLocked() bool {
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Pid is the process id of the process last launched (0 if none).
func (r *Replica) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Logs is everything the replica has written, over all its runs.
func (r *Replica) Logs() string {
	if r.mem != nil {
		return r.mem.String()
	}
	b, _ := os.ReadFile(r.spec.LogFile)
	return string(b)
}

// Tail is the last n lines of Logs, for failure messages.
func (r *Replica) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(r.Logs(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// LockedBuffer is a bytes.Buffer that several goroutines may write and
// read at once: a process's output, a replica's log read by the test.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

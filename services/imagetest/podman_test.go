package imagetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// installHelp is what a machine without the container tools needs.
const installHelp = "apt-get install -y podman runc debootstrap (as root; .ci/run does it)"

// podman runs the podman CLI with the runtime this machine needs: crun
// refuses the kernel's hybrid cgroup layout here, runc does not.
type podman struct {
	t   *testing.T
	bin string
}

// newPodman fails the test, with the install command, where podman, runc
// or debootstrap is missing or podman is not run as root. Never a skip:
// `make image-test` exists to run this.
func newPodman(t *testing.T) *podman {
	t.Helper()
	var missing []string
	for _, tool := range []string{"podman", "runc", "debootstrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			// debootstrap and runc live in /usr/sbin, which a non-login PATH
			// may lack.
			if _, serr := os.Stat(filepath.Join("/usr/sbin", tool)); serr != nil {
				missing = append(missing, tool)
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s not installed: %s", strings.Join(missing, ", "), installHelp)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the image test runs podman as root (it writes /etc/containers/containers.conf and imports base images into root's store); run it as root")
	}
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Fatalf("podman: %v: %s", err, installHelp)
	}
	return &podman{t: t, bin: bin}
}

// run runs podman with args and returns its trimmed standard output; a
// failure is returned with the command and its standard error.
func (p *podman) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.bin, append([]string{"--runtime", "runc"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 40))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// must is run that fails the test on error.
func (p *podman) must(ctx context.Context, args ...string) string {
	p.t.Helper()
	out, err := p.run(ctx, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// removeContainers force-removes containers by name (only ours: every name
// starts with the test's own random prefix), logging what each printed.
func (p *podman) removeContainers(names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range names {
		if logs, err := p.run(ctx, "logs", "--tail", "20", n); err == nil && p.t.Failed() {
			p.t.Logf("last lines of %s:\n%s", n, logs)
		}
		if _, err := p.run(ctx, "rm", "--force", "--time", "0", "--ignore", n); err != nil {
			p.t.Errorf("clean up: %v", err)
		}
	}
}

// lastLines keeps the tail of long output (a failed build prints a lot).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// repoRoot is the repository's top directory (this module is two below).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		t.Fatalf("no Dockerfile at the repository root %s: %v", dir, err)
	}
	return dir
}

// goroot is the toolchain the go command running this test uses (the
// Makefile's GOTOOLCHAIN), which becomes the build stage's /usr/local/go.
func goroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// procStatus reads the named fields of /proc/PID/status for a container's
// main process, as the host sees it: what it really runs as.
func procStatus(t *testing.T, pid string, fields ...string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatalf("read the container process's status: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range fields {
			if k == f {
				got[f] = strings.Join(strings.Fields(v), " ")
			}
		}
	}
	return got
}

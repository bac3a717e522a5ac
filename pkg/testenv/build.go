package testenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// built is the bbs binary of this process, built at most once: every test
// of a run (and every replica of every test) runs the same one.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// BuildBBS returns a bbs binary: the one $BBS_BIN names (say make build's
// bin/bbs, as make cluster uses it), else services/bbs built once per
// process as make build builds it (-tags nomsgpack, CGO_ENABLED=0,
// -trimpath) into a temporary directory that RemoveBuilt deletes.
func BuildBBS() (string, error) {
	if p := os.Getenv("BBS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("BBS_BIN: %w", err)
		}
		return p, nil
	}
	built.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, built.err = os.MkdirTemp("", "bbs-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "bbs")
		cmd := exec.Command(goTool(), "build", "-tags", "nomsgpack", "-trimpath", "-o", built.path, "./services/bbs")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./services/bbs: %w\n%s", err, out)
		}
	})
	return built.path, built.err
}

// BBS is BuildBBS for a test: it fails the test if there is no binary.
func BBS(t testing.TB) string {
	t.Helper()
	bin, err := BuildBBS()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return bin
}

// RemoveBuilt deletes the binary BuildBBS built, if it did; a TestMain
// calls it after the run.
func RemoveBuilt() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// repoRoot is the directory holding go.work, at or above the current one
// (a test runs in its package's directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work at or above the current directory: run from the repository (or set BBS_BIN to a bbs binary)")
		}
		dir = parent
	}
}

// goTool finds the go command: on PATH, else in $GOROOT.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// RunMigrate runs `bin migrate` on the database at dbURL, as make cluster
// and compose do before any replica starts.
func RunMigrate(ctx context.Context, bin, dbURL string) error {
	cmd := exec.CommandContext(ctx, bin, "migrate")
	cmd.Env = append(baseEnv(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bbs migrate: %w\n%s", err, out)
	}
	return nil
}

// Migrate is RunMigrate for a test.
func Migrate(t testing.TB, bin, dbURL string) {
	t.Helper()
	if err := RunMigrate(context.Background(), bin, dbURL); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// baseEnv is all a replica takes from the caller's environment: what
// a developer's shell exports cannot change a test.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

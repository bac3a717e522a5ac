package deploytest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// repoRoot is the repository, two levels above this module.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root not found above %s: %v", root, err)
	}
	return root
}

// TestMain removes the bbs binary the run built (testenv.BBS).
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilt()
	os.Exit(code)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

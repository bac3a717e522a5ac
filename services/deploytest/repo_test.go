package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// envNameRe finds the variables pkg/config reads: p.str("HTTP_ADDR", ...),
// p.int(...), p.dur(...), p.rate(...), p.bool(...), p.prefixes(...).
var envNameRe = regexp.MustCompile(`\bp\.(?:str|int|dur|rate|bool|prefixes)\("([A-Z][A-Z0-9_]*)"`)

// serverEnv lists the environment variables the server reads, from the
// source of pkg/config, so no list is kept twice.
func serverEnv(t testing.TB) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "pkg/config/config.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range envNameRe.FindAllSubmatch(src, -1) {
		names = append(names, string(m[1]))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	// If the parsing ever stops matching, say so rather than failing on
	// every variable.
	for _, must := range []string{"DATABASE_URL", "REDIS_URL", "SHUTDOWN_GRACE", "SSE_HEARTBEAT"} {
		if !slices.Contains(names, must) {
			t.Fatalf("pkg/config/config.go: found %v, not %s: has the way it reads variables changed?", names, must)
		}
	}
	return names
}

// checkServerEnv fails for every name the server does not read.
func checkServerEnv(t testing.TB, where string, names []string) {
	t.Helper()
	known := serverEnv(t)
	for _, n := range names {
		if !slices.Contains(known, n) {
			t.Errorf("%s sets %s, which the server does not read (pkg/config reads %v)", where, n, known)
		}
	}
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

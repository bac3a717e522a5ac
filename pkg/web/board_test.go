package web

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBoardRulesInNode runs board.test.js with node's own test runner: the
// page's board rules (static/board.js) against the cases Go's
// wire.ApplyEvent passes (pkg/wire/testdata/apply_cases.json).
func TestBoardRulesInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to test the page's script: apt-get install -y nodejs (%v)", err)
	}
	out, err := exec.Command(node, "--test", "--test-reporter=tap", "board.test.js").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test board.test.js: %v\n%s", err, out)
	}
	// A runner that found no test would pass as well.
	if !strings.Contains(string(out), "# pass ") || strings.Contains(string(out), "# pass 0\n") {
		t.Fatalf("node ran no test:\n%s", out)
	}
	t.Logf("%s", out[strings.LastIndex(string(out), "# tests"):])
}

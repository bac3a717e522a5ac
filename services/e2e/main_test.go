package e2e

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// The bbs binary is shared by every test of the run (bbsBinary).
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

package e2e

import (
	"os"
	"testing"

	"github.com/bbsboard/bbs/pkg/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilt() // the bbs binary every test of the run shares
	os.Exit(code)
}

package soak

import (
	"os"
	"testing"

	"github.com/bbsboard/bbs/pkg/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilt() // the bbs binary the run built, if it did
	os.Exit(code)
}

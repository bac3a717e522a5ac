package testenv

import (
	"testing"
	"time"
)

// Eventually calls check until it returns nil and returns how long that
// took. Once within has passed it fails the test with check's last error,
// which should say what was awaited and what was seen instead. It polls
// every few milliseconds at first, then every 50 ms, so a quick condition
// is seen quickly and a slow one does not keep a core busy.
func Eventually(t testing.TB, within time.Duration, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	pause := 5 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

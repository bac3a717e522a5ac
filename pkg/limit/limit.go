// Package limit provides write rate limiters keyed by client: one shared by
// every replica through Redis, and one in this process's memory for the
// single-replica mode without Redis. Both have the same method set, so the
// HTTP layer takes either behind its own interface.
package limit

import (
	"math"
	"time"
)

// Rate is a client's budget: PerMinute writes a minute on average, with up
// to Burst of them at once.
type Rate struct {
	PerMinute int
	Burst     int
}

// normalize makes a usable rate: a burst below one would refuse every
// write, which nobody means by "no burst".
func (r Rate) normalize() Rate {
	if r.Burst < 1 {
		r.Burst = 1
	}
	return r
}

// interval is the time one write's budget takes to come back.
func (r Rate) interval() time.Duration {
	return time.Duration(math.Ceil(float64(time.Minute) / float64(r.PerMinute)))
}

// refill is the time after which an idle client's budget is whole again.
func (r Rate) refill() time.Duration {
	return time.Duration(r.Burst) * r.interval()
}

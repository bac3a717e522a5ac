package feed

import "github.com/bbsboard/bbs/pkg/sse"

// ring keeps the frames of the most recent versions, contiguous and ending
// at the feed's version, so a stream that reconnects or overflows gets
// exactly what it missed without a database read.
type ring struct {
	frames []sse.Frame
	start  int // index of the oldest frame
	n      int
}

func newRing(size int) ring { return ring{frames: make([]sse.Frame, size)} }

func (r *ring) push(f sse.Frame) {
	if r.n < len(r.frames) {
		r.frames[(r.start+r.n)%len(r.frames)] = f
		r.n++
		return
	}
	r.frames[r.start] = f
	r.start = (r.start + 1) % len(r.frames)
}

func (r *ring) reset() {
	clear(r.frames)
	r.start, r.n = 0, 0
}

// since returns the frames after version, or ok=false when the ring does
// not reach back that far.
func (r *ring) since(version int64) (out []sse.Frame, ok bool) {
	if r.n == 0 {
		return nil, false
	}
	oldest := r.frames[r.start].Version
	newest := r.frames[(r.start+r.n-1)%len(r.frames)].Version
	if version < oldest-1 || version > newest {
		return nil, false
	}
	skip := int(version - oldest + 1)
	out = make([]sse.Frame, 0, r.n-skip)
	for i := skip; i < r.n; i++ {
		out = append(out, r.frames[(r.start+i)%len(r.frames)])
	}
	return out, true
}

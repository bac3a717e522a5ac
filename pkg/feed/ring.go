package feed

import "github.com/bbsboard/bbs/pkg/sse"

// ring keeps the frames of the most recent versions, contiguous and ending
// at the feed's version, so a stream that reconnects or overflows gets
// exactly what it missed without a database read. Each frame remembers the
// topics whose text it carries, so that a delete can forget them.
type ring struct {
	frames []ringFrame
	start  int // index of the oldest frame
	n      int
}

type ringFrame struct {
	sse.Frame
	id, fill int64 // topics whose text the frame carries (0: none)
}

func newRing(size int) ring { return ring{frames: make([]ringFrame, size)} }

func (r *ring) at(i int) *ringFrame { return &r.frames[(r.start+i)%len(r.frames)] }

func (r *ring) push(f sse.Frame, id, fill int64) {
	e := ringFrame{Frame: f, id: id, fill: fill}
	if r.n < len(r.frames) {
		*r.at(r.n) = e
		r.n++
		return
	}
	r.frames[r.start] = e
	r.start = (r.start + 1) % len(r.frames)
}

func (r *ring) reset() {
	clear(r.frames)
	r.start, r.n = 0, 0
}

// forget drops every frame up to the newest one that carries topic id's
// text: once a topic is deleted, no resume may hand its text out again.
// The ring stays contiguous; resumes from before what was dropped get a
// snapshot.
func (r *ring) forget(id int64) {
	for i := r.n - 1; i >= 0; i-- {
		if e := r.at(i); e.id == id || e.fill == id {
			for j := 0; j <= i; j++ {
				*r.at(j) = ringFrame{}
			}
			r.start = (r.start + i + 1) % len(r.frames)
			r.n -= i + 1
			return
		}
	}
}

// since returns the frames after version, or ok=false when the ring does
// not reach back that far.
func (r *ring) since(version int64) (out []sse.Frame, ok bool) {
	if r.n == 0 {
		return nil, false
	}
	oldest := r.at(0).Version
	newest := r.at(r.n - 1).Version
	if version < oldest-1 || version > newest {
		return nil, false
	}
	skip := int(version - oldest + 1)
	out = make([]sse.Frame, 0, r.n-skip)
	for i := skip; i < r.n; i++ {
		out = append(out, r.at(i).Frame)
	}
	return out, true
}

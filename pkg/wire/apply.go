package wire

// ApplyEvent applies one delta event to a window of topics (newest first)
// the way every client must, so that the snapshot plus the deltas equal
// GET /api/topics at the same version: a created topic goes in by id and
// the window is cut to limit (0: no cut); an update replaces; a delete
// removes, then puts the event's fill (the topic that slides into the
// first page) in its place by id, unless it is there already or the window
// is full. name is the SSE event name. The page's board.js follows the
// same rule, tested against the same cases (testdata/apply_cases.json);
// tests and tools use this one.
func ApplyEvent(ts []Topic, name string, e Event, limit int) []Topic {
	out := make([]Topic, 0, len(ts)+1)
	switch name {
	case EventCreated:
		inserted := false
		for _, t := range ts {
			if !inserted && t.ID < e.Topic.ID {
				out = append(out, *e.Topic)
				inserted = true
			}
			if t.ID != e.Topic.ID {
				out = append(out, t)
			}
		}
		if !inserted {
			out = append(out, *e.Topic)
		}
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
	case EventUpdated:
		for _, t := range ts {
			if t.ID == e.Topic.ID {
				t = *e.Topic
			}
			out = append(out, t)
		}
	case EventDeleted:
		present := false
		for _, t := range ts {
			if t.ID != e.ID {
				out = append(out, t)
				present = present || (e.Fill != nil && t.ID == e.Fill.ID)
			}
		}
		if e.Fill != nil && !present && (limit == 0 || len(out) < limit) {
			i := len(out)
			for i > 0 && out[i-1].ID < e.Fill.ID {
				i--
			}
			out = append(out[:i], append([]Topic{*e.Fill}, out[i:]...)...)
		}
	default:
		return append(out, ts...)
	}
	return out
}

package wire_test

import (
	"reflect"
	"testing"

	"github.com/bbsboard/bbs/pkg/wire"
)

func ids(ts []wire.Topic) []int64 {
	out := []int64{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestApplyEvent(t *testing.T) {
	win := []wire.Topic{{ID: 5}, {ID: 3}, {ID: 1}}
	created := func(id int64) wire.Event { return wire.Event{Topic: &wire.Topic{ID: id, Comment: "new"}} }
	for _, tc := range []struct {
		name  string
		event string
		e     wire.Event
		limit int
		want  []int64
	}{
		{"newest goes first", "topic.created", created(6), 0, []int64{6, 5, 3, 1}},
		{"late commit of an older id goes by id", "topic.created", created(4), 0, []int64{5, 4, 3, 1}},
		{"window cut to limit", "topic.created", created(6), 3, []int64{6, 5, 3}},
		{"created twice is one", "topic.created", created(3), 0, []int64{5, 3, 1}},
		{"delete removes", "topic.deleted", wire.Event{ID: 3}, 0, []int64{5, 1}},
		{"delete of unknown id", "topic.deleted", wire.Event{ID: 9}, 0, []int64{5, 3, 1}},
		{"update outside window ignored", "topic.updated", created(9), 0, []int64{5, 3, 1}},
		{"delete slides the fill in", "topic.deleted", wire.Event{ID: 3, Fill: &wire.Topic{ID: 0}}, 3, []int64{5, 1, 0}},
		{"fill already shown is not doubled", "topic.deleted", wire.Event{ID: 9, Fill: &wire.Topic{ID: 1}}, 3, []int64{5, 3, 1}},
		{"fill waits for room", "topic.deleted", wire.Event{ID: 9, Fill: &wire.Topic{ID: 0}}, 3, []int64{5, 3, 1}},
		{"fill goes in by id", "topic.deleted", wire.Event{ID: 5, Fill: &wire.Topic{ID: 2}}, 3, []int64{3, 2, 1}},
	} {
		if got := ids(wire.ApplyEvent(win, tc.event, tc.e, tc.limit)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := wire.ApplyEvent(win, "topic.updated", wire.Event{Topic: &wire.Topic{ID: 3, Comment: "edited"}}, 0); got[1].Comment != "edited" || win[1].Comment != "" {
		t.Errorf("update: %+v (window must not change in place: %+v)", got, win)
	}
}

package wire_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/bbsboard/bbs/pkg/wire"
)

// applyCases are shared with the page's board.js (pkg/web/board.test.js
// runs the same file), so the server's rule and the browser's cannot drift.
type applyCases struct {
	Window []wire.Topic `json:"window"`
	Cases  []struct {
		Name         string          `json:"name"`
		Event        string          `json:"event"`
		Data         json.RawMessage `json:"data"`
		Limit        int             `json:"limit"`
		Want         []int64         `json:"want"`
		WantComments []string        `json:"want_comments"`
	} `json:"cases"`
}

func TestApplyEvent(t *testing.T) {
	raw, err := os.ReadFile("testdata/apply_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases applyCases
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("testdata/apply_cases.json: %v", err)
	}
	if len(cases.Cases) < 10 {
		t.Fatalf("only %d cases in testdata/apply_cases.json", len(cases.Cases))
	}
	before := append([]wire.Topic(nil), cases.Window...)
	for _, tc := range cases.Cases {
		var e wire.Event
		if err := json.Unmarshal(tc.Data, &e); err != nil {
			t.Fatalf("%s: data: %v", tc.Name, err)
		}
		got := wire.ApplyEvent(cases.Window, tc.Event, e, tc.Limit)
		ids, comments := []int64{}, []string{}
		for _, topic := range got {
			ids = append(ids, topic.ID)
			comments = append(comments, topic.Comment)
		}
		if !reflect.DeepEqual(ids, tc.Want) {
			t.Errorf("%s: %v, want %v", tc.Name, ids, tc.Want)
		}
		if tc.WantComments != nil && !reflect.DeepEqual(comments, tc.WantComments) {
			t.Errorf("%s: comments %q, want %q", tc.Name, comments, tc.WantComments)
		}
		// The window given must not change in place: clients keep it.
		if !reflect.DeepEqual(cases.Window, before) {
			t.Fatalf("%s: changed the window it was given: %+v", tc.Name, cases.Window)
		}
	}
}

package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/bbsboard/bbs/pkg/wire"
)

// FuzzStrictUnmarshal: whatever the body, decoding either fails with a
// client error (4xx, never a panic) or yields exactly what a plain decode
// of the same body yields, from a body that is one JSON object with no
// key other than "comment".
func FuzzStrictUnmarshal(f *testing.F) {
	for _, s := range []string{`{"comment":"hi"}`, `{}`, `{"comment":"a"}{"comment":"b"}`, `{"Comment":"x"}`,
		`{"comment":5}`, `[]`, `null`, `{"comment":"a","extra":1}`, `{"comment":"\u0000"}`, ` {"comment":"x"} `, `{"comment":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got wire.CommentBody
		err := strictUnmarshal(body, &got)
		if err != nil {
			var eb *errBody
			if !errors.As(err, &eb) || eb.status < 400 || eb.status > 499 {
				t.Fatalf("body %q: error %v is not a client error", body, err)
			}
			return
		}
		var keys map[string]json.RawMessage
		if json.Unmarshal(body, &keys) != nil { // null passes here: it decodes to no keys
			t.Fatalf("accepted %q, which is not a JSON object", body)
		}
		for k := range keys {
			if k != "comment" {
				t.Fatalf("accepted key %q in %q", k, body)
			}
		}
		var plain wire.CommentBody
		if err := json.Unmarshal(body, &plain); err != nil || plain != got {
			t.Fatalf("strict %+v, plain %+v (%v) for %q", got, plain, err, body)
		}
	})
}

package api_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// TestAdminActionsAudited: an edit, a delete and a purge made with the
// admin token each leave one structured audit line naming the action, the
// topic and a fingerprint of the token; the token itself appears nowhere
// in the log. An author changing their own topic is not audited. Before,
// nothing recorded what moderators did.
func TestAdminActionsAudited(t *testing.T) {
	var logs testenv.LockedBuffer
	b := startBoardLogging(t, slog.New(slog.NewJSONHandler(&logs, nil)))
	send := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, b.url+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	var ids []int64
	var own string
	for i := range 3 {
		code, out := send("POST", "/api/topics", "", fmt.Sprintf(`{"comment":"topic %d"}`, i))
		if code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		ids = append(ids, int64(out["topic"].(map[string]any)["id"].(float64)))
		own = out["token"].(string)
	}
	// The author edits their own topic: not a moderator's action.
	if code, _ := send("PATCH", fmt.Sprintf("/api/topics/%d", ids[2]), own, `{"comment":"mine"}`); code != http.StatusOK {
		t.Fatalf("own edit: %d", code)
	}
	for _, rq := range []struct{ method, path, body string }{
		{"PATCH", fmt.Sprintf("/api/topics/%d", ids[0]), `{"comment":"moderated"}`},
		{"DELETE", fmt.Sprintf("/api/topics/%d", ids[0]), ""},
		{"DELETE", fmt.Sprintf("/api/topics/%d?purge=true", ids[1]), ""},
	} {
		if code, _ := send(rq.method, rq.path, "admin-token", rq.body); code >= 300 {
			t.Fatalf("%s %s: %d", rq.method, rq.path, code)
		}
	}
	text := logs.String()
	if strings.Contains(text, "admin-token") || strings.Contains(text, own) {
		t.Fatalf("a token is in the log:\n%s", text)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var l struct {
			Msg    string
			Audit  bool
			Action string
			Topic  int64
			Actor  string
			Client string
		}
		if json.Unmarshal([]byte(line), &l) != nil || !l.Audit {
			continue
		}
		if !strings.HasPrefix(l.Actor, "admin:") || len(l.Actor) != len("admin:")+8 || l.Client == "" {
			t.Errorf("audit line without a proper actor or client: %s", line)
		}
		got = append(got, fmt.Sprintf("%s %d", l.Action, l.Topic))
	}
	want := []string{fmt.Sprintf("edit %d", ids[0]), fmt.Sprintf("delete %d", ids[0]), fmt.Sprintf("purge %d", ids[1])}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit lines %v, want %v", got, want)
	}
}

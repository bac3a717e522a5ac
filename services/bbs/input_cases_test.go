package main

import (
	"strings"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// TestBadInput's table: one function per verb, each row a request built
// by a small constructor and the answer it must get.

const (
	jsonType = "application/json"
	formType = "application/x-www-form-urlencoded"
)

// inputCase is one request and the answer it must get.
type inputCase struct {
	name        string
	rq          testenv.Request
	status      int
	code        string  // error code of a 4xx
	comment     *string // stored comment a 201 must echo
	formComment string  // comment a 303 form post must have stored
}

// refused: a 4xx with this error code.
func (c inputCase) refused(status int, code string) inputCase {
	c.status, c.code = status, code
	return c
}

// created: a 201 that stored comment.
func (c inputCase) created(comment string) inputCase {
	c.status, c.comment = 201, &comment
	return c
}

// posted: a form post's 303 that stored comment.
func (c inputCase) posted(comment string) inputCase {
	c.status, c.formComment = 303, comment
	return c
}

// listed: a 200 with a list.
func (c inputCase) listed() inputCase {
	c.status = 200
	return c
}

// chunked sends the body without a Content-Length.
func (c inputCase) chunked() inputCase {
	c.rq.Chunked = true
	return c
}

// inputTable builds the rows against one replica and one live topic.
type inputTable struct {
	base   string // the replica
	target string // a live topic's URL
	token  string // its token
}

func (b inputTable) topics() string { return b.base + "/api/topics" }

// req is a row of any request.
func (b inputTable) req(name string, rq testenv.Request) inputCase {
	return inputCase{name: name, rq: rq}
}

// postAs is a create with body, byte for byte, as contentType ("" sends
// none).
func (b inputTable) postAs(name, contentType, body string) inputCase {
	return b.req(name, testenv.Request{Method: "POST", URL: b.topics(), ContentType: contentType, Body: []byte(body)})
}

// post is a create with body, byte for byte, as JSON.
func (b inputTable) post(name, body string) inputCase { return b.postAs(name, jsonType, body) }

// comment is a create of {"comment": s}, encoded as a correct client would.
func (b inputTable) comment(name, s string) inputCase { return b.post(name, string(jsonBody(s))) }

// form is a create as the page without script posts it.
func (b inputTable) form(name, body string) inputCase { return b.postAs(name, formType, body) }

// edit is a PATCH of the live topic with its own token.
func (b inputTable) edit(name, contentType, body string) inputCase {
	return b.req(name, testenv.Request{Method: "PATCH", URL: b.target, Token: b.token, ContentType: contentType, Body: []byte(body)})
}

// patchID is an admin's edit of /api/topics/id.
func (b inputTable) patchID(name, id string) inputCase {
	return b.req(name, testenv.Request{Method: "PATCH", URL: b.topics() + "/" + id, Token: "admin-secret", JSON: map[string]string{"comment": "x"}})
}

// deleteID is an admin's delete of /api/topics/id.
func (b inputTable) deleteID(name, id string) inputCase {
	return b.req(name, testenv.Request{Method: "DELETE", URL: b.topics() + "/" + id, Token: "admin-secret"})
}

// list is a GET of the list with a query.
func (b inputTable) list(query string) inputCase {
	return b.req(query, testenv.Request{Method: "GET", URL: b.topics() + "?" + query})
}

// postCases: framing, content type and the JSON's shape, strictly decoded.
func (b inputTable) postCases() []inputCase {
	const badJSON, badComment, badType = "invalid_json", "invalid_comment", "unsupported_media_type"
	return []inputCase{
		b.post("empty body", "").refused(400, badJSON),
		b.post("white space body", " \n\t").refused(400, badJSON),
		b.postAs("no content type", "", string(jsonBody("hi"))).refused(415, badType),
		b.postAs("text/plain", "text/plain", string(jsonBody("hi"))).refused(415, badType),
		b.postAs("multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhi\r\n--x--\r\n").refused(415, badType),
		b.postAs("malformed content type", "application/json; =", string(jsonBody("hi"))).refused(415, badType),
		b.postAs("json with charset", "application/json; charset=utf-8", string(jsonBody("with charset"))).created("with charset"),

		b.post("empty object", `{}`).refused(422, badComment),
		// A top-level null decodes to nothing at all: the comment is missing.
		b.post("null body", `null`).refused(422, badComment),
		// encoding/json leaves a string untouched on null: it reads as "".
		b.post("null comment", `{"comment":null}`).refused(422, badComment),
		b.comment("empty comment", "").refused(422, badComment),
		b.comment("white space comment", "   \n\t ").refused(422, badComment),
		b.post("number comment", `{"comment":5}`).refused(400, badJSON),
		b.post("huge number comment", `{"comment":1e999}`).refused(400, badJSON),
		b.post("bool comment", `{"comment":true}`).refused(400, badJSON),
		b.post("array comment", `{"comment":["a"]}`).refused(400, badJSON),
		b.post("object comment", `{"comment":{"a":1}}`).refused(400, badJSON),
		b.post("array body", `[]`).refused(400, badJSON),
		b.post("string body", `"str"`).refused(400, badJSON),
		b.post("number body", `42`).refused(400, badJSON),
		b.post("unknown field", `{"comment":"x","extra":1}`).refused(400, badJSON),
		b.post("two objects", `{"comment":"a"}{"comment":"b"}`).refused(400, badJSON),
		b.post("trailing garbage", `{"comment":"a"} x`).refused(400, badJSON),
		b.post("trailing brace", `{"comment":"a"}}`).refused(400, badJSON),
		b.post("trailing white space is fine", "{\"comment\":\"trailing ws\"}\r\n ").created("trailing ws"),
		b.post("truncated", `{"comment":`).refused(400, badJSON),
		b.post("trailing comma", `{"comment":"a",}`).refused(400, badJSON),
		b.post("single quotes", `{'comment':'a'}`).refused(400, badJSON),
		b.post("byte order mark", "\xef\xbb\xbf"+string(jsonBody("bom"))).refused(400, badJSON),
		b.post("deep nesting", `{"comment":`+strings.Repeat("[", 20000)).refused(400, badJSON),
		// encoding/json matches field names case-insensitively; the API
		// refuses any key not spelled exactly.
		b.post("field name in another case", `{"Comment":"case folded"}`).refused(400, badJSON),
	}
}

// postTextCases: what the comment may hold. The raw body must be valid
// UTF-8 (encoding/json would otherwise quietly store U+FFFD); the length
// is counted in code points after normalisation; no control characters
// (category Cc) but \n and \t.
func (b inputTable) postTextCases() []inputCase {
	const badJSON, badComment, badUTF8 = "invalid_json", "invalid_comment", "invalid_utf8"
	longCRLF := strings.Repeat("a\r\n", 700) // 2100 code points, 1400 once folded and trimmed
	return []inputCase{
		b.post("invalid utf-8 byte", "{\"comment\":\"\xff\"}").refused(400, badUTF8),
		b.post("truncated utf-8 sequence", "{\"comment\":\"a\xc3\"}").refused(400, badUTF8),
		b.post("overlong utf-8", "{\"comment\":\"\xc0\xaf\"}").refused(400, badUTF8),
		b.post("utf-8 encoded surrogate", "{\"comment\":\"\xed\xa0\x80\"}").refused(400, badUTF8),
		b.post("invalid utf-8 outside the string", "{\"comment\":\"ok\"}\xff").refused(400, badUTF8),
		// NOTE (current behaviour, see report): a lone UTF-16 surrogate
		// written as a JSON escape is valid UTF-8 on the wire; encoding/json
		// turns it into U+FFFD, which is then stored.
		b.post("escaped lone surrogate", `{"comment":"x\ud800"}`).created("x\uFFFD"),

		b.comment("2001 two-byte code points", strings.Repeat("é", 2001)).refused(422, badComment),
		b.comment("2001 ascii", strings.Repeat("a", 2001)).refused(422, badComment),
		b.comment("2000 two-byte code points", strings.Repeat("é", 2000)).created(strings.Repeat("é", 2000)),
		b.comment("2000 four-byte code points", strings.Repeat("😀", 2000)).created(strings.Repeat("😀", 2000)),
		b.comment("2000 code points once trimmed", " \n\t"+strings.Repeat("ü", 2000)+"\r\n ").created(strings.Repeat("ü", 2000)),
		b.comment("over 2000 only before CRLF folding", longCRLF).created(strings.TrimSpace(strings.ReplaceAll(longCRLF, "\r\n", "\n"))),
		b.comment("CRLF folded and trimmed", "  line one\r\nline two\r\n\r\n  ").created("line one\nline two"),

		b.post("NUL", `{"comment":"a\u0000b"}`).refused(422, badComment),
		b.post("only NUL", `{"comment":"\u0000"}`).refused(422, badComment),
		b.post("BEL", `{"comment":"\u0007"}`).refused(422, badComment),
		b.post("ANSI escape", `{"comment":"\u001b[31mred"}`).refused(422, badComment),
		b.comment("lone CR", "a\rb").refused(422, badComment),
		b.comment("DEL", "a\x7fb").refused(422, badComment),
		b.comment("C1 control NEL", "a\u0085b").refused(422, badComment),
		// JSON itself forbids raw control bytes inside a string.
		b.post("raw BEL byte in JSON string", "{\"comment\":\"a\x07b\"}").refused(400, badJSON),
		b.comment("newline and tab inside", "tab\there\nnext line").created("tab\there\nnext line"),
	}
}

// postSizeCases: the cap is 64 KiB of body, whatever the framing. A body
// of exactly 64 KiB is read (and then refused for its length as a
// comment: 422) while one byte more is refused unread (413).
func (b inputTable) postSizeCases() []inputCase {
	padded := func(n int) string { // a JSON body of exactly n bytes
		return `{"comment":"` + strings.Repeat("a", n-len(`{"comment":""}`)) + `"}`
	}
	huge, long := padded(5<<20), strings.Repeat("x", 70000)
	return []inputCase{
		b.post("body of exactly 64 KiB", padded(64<<10)).refused(422, "invalid_comment"),
		b.post("body of 64 KiB + 1", padded(64<<10+1)).refused(413, "body_too_large"),
		b.comment("70000-byte comment", long).refused(413, "body_too_large"),
		b.comment("70000-byte comment chunked", long).chunked().refused(413, "body_too_large"),
		b.post("5 MiB body", huge).refused(413, "body_too_large"),
		b.post("5 MiB body chunked", huge).chunked().refused(413, "body_too_large"),
	}
}

// formCases: the page without script posts a form.
func (b inputTable) formCases() []inputCase {
	const badForm, badComment = "invalid_form", "invalid_comment"
	return []inputCase{
		b.form("form post", "comment=hi").posted("hi"),
		b.postAs("form post folded", formType+"; charset=utf-8", "comment=+form+line%0D%0Anext+").posted("form line\nnext"),
		b.form("form unknown field", "comment=hi&extra=1").refused(400, badForm),
		b.form("form comment twice", "comment=a&comment=b").refused(400, badForm),
		b.form("form bad escape", "comment=%zz").refused(400, badForm),
		b.form("form empty body", "").refused(422, badComment),
		b.form("form empty comment", "comment=").refused(422, badComment),
		b.form("form NUL", "comment=a%00b").refused(422, badComment),
		// The raw body is ASCII; the invalid UTF-8 appears only once unescaped.
		b.form("form escaped invalid utf-8", "comment=%FF").refused(422, badComment),
		b.form("form raw invalid utf-8", "comment=\xff").refused(400, "invalid_utf8"),
		b.form("form over 64 KiB", "comment="+strings.Repeat("x", 70000)).refused(413, "body_too_large"),
	}
}

// patchCases: ids that cannot name a topic, a topic that does not exist,
// and bad bodies on an edit the token would allow: refused before any
// write.
func (b inputTable) patchCases() []inputCase {
	const notFound = "not_found"
	return []inputCase{
		b.patchID("PATCH non-numeric id", "abc").refused(404, notFound),
		b.patchID("PATCH id 0", "0").refused(404, notFound),
		b.patchID("PATCH negative id", "-1").refused(404, notFound),
		b.patchID("PATCH fractional id", "1.5").refused(404, notFound),
		b.patchID("PATCH id past int64", "99999999999999999999").refused(404, notFound),
		b.patchID("PATCH unknown id", "999999").refused(404, notFound),

		b.edit("PATCH empty body", jsonType, "").refused(400, "invalid_json"),
		b.edit("PATCH white space comment", jsonType, string(jsonBody(" \r\n "))).refused(422, "invalid_comment"),
		b.edit("PATCH control character", jsonType, `{"comment":"\u001b[2J"}`).refused(422, "invalid_comment"),
		b.edit("PATCH too long", jsonType, string(jsonBody(strings.Repeat("é", 2001)))).refused(422, "invalid_comment"),
		b.edit("PATCH unknown field", jsonType, `{"comment":"x","id":1}`).refused(400, "invalid_json"),
		b.edit("PATCH invalid utf-8", jsonType, "{\"comment\":\"\xfe\"}").refused(400, "invalid_utf8"),
		b.edit("PATCH text/plain", "text/plain", string(jsonBody("x"))).refused(415, "unsupported_media_type"),
		// Edits take JSON only; a form is the no-script create and nothing else.
		b.edit("PATCH form", formType, "comment=x").refused(415, "unsupported_media_type"),
		b.edit("PATCH over 64 KiB", jsonType, string(jsonBody(strings.Repeat("x", 70000)))).refused(413, "body_too_large"),
	}
}

// deleteCases: ids that cannot name a topic, and a topic that does not
// exist, purged or not.
func (b inputTable) deleteCases() []inputCase {
	return []inputCase{
		b.deleteID("DELETE non-numeric id", "abc").refused(404, "not_found"),
		b.deleteID("DELETE id 0", "0").refused(404, "not_found"),
		b.deleteID("DELETE unknown id", "999999").refused(404, "not_found"),
		b.deleteID("DELETE unknown id purge", "999999?purge=true").refused(404, "not_found"),
	}
}

// getCases: the list's query parameters.
func (b inputTable) getCases() []inputCase {
	return []inputCase{
		b.list("limit=0").refused(400, "invalid_limit"),
		b.list("limit=501").refused(400, "invalid_limit"),
		b.list("limit=abc").refused(400, "invalid_limit"),
		b.list("limit=-1").refused(400, "invalid_limit"),
		b.list("limit=1.5").refused(400, "invalid_limit"),
		b.list("before=-1").refused(400, "invalid_before"),
		b.list("before=0").refused(400, "invalid_before"),
		b.list("before=x").refused(400, "invalid_before"),
		b.list("before=99999999999999999999").refused(400, "invalid_before"),
		b.list("limit=500").listed(),
		b.list("limit=1").listed(),
		b.list("before=1").listed(),
	}
}

// routeCases: paths no route has, and methods a route does not take.
func (b inputTable) routeCases() []inputCase {
	x := map[string]string{"comment": "x"}
	return []inputCase{
		b.req("unknown api route", testenv.Request{Method: "GET", URL: b.base + "/api/nope"}).refused(404, "not_found"),
		b.req("unknown route", testenv.Request{Method: "GET", URL: b.base + "/nope"}).refused(404, "not_found"),
		b.req("too deep a topic path", testenv.Request{Method: "PATCH", URL: b.target + "/extra", Token: b.token, JSON: x}).refused(404, "not_found"),
		b.req("PUT /api/topics", testenv.Request{Method: "PUT", URL: b.topics(), JSON: x}).refused(405, "method_not_allowed"),
		b.req("DELETE /api/topics", testenv.Request{Method: "DELETE", URL: b.topics(), Token: "admin-secret"}).refused(405, "method_not_allowed"),
		b.req("POST /api/topics/:id", testenv.Request{Method: "POST", URL: b.target, JSON: x}).refused(405, "method_not_allowed"),
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/web"
	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/gin-gonic/gin"
)

// csp allows nothing but this origin: no inline script, no CDN.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func pageHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// noscriptMark in index.html is where the page for readers without
// JavaScript goes: inside <noscript>, which a browser running scripts
// treats as inert text, so the live list the script draws is not touched.
var noscriptMark = []byte("<!--noscript-topics-->")

// noscriptList is the board as plain HTML: one page of topics and links to
// the older (?before=) and the newest pages. Comments are escaped by
// html/template, never markup.
var noscriptList = template.Must(template.New("topics").Parse(`<ol class="topics">
{{- range .Topics}}
<li class="topic" id="topic-{{.ID}}"><p class="comment">{{.Comment}}</p><div class="meta"><span class="topic-id">#{{.ID}}</span> <time class="time" datetime="{{.CreatedAt.UTC.Format "2006-01-02T15:04:05Z07:00"}}">{{.CreatedAt.UTC.Format "2006-01-02 15:04 UTC"}}</time></div></li>
{{- end}}
</ol>
<p class="older">{{if .Before}}<a class="btn btn-ghost" href="/">Newest topics</a> {{end}}{{if .Older}}<a class="btn btn-ghost older-link" href="/?before={{.Older}}">Older topics</a>{{end}}</p>
`))

// noscriptPage renders the page of topics the request asks for (?before=
// an id for older ones), or nil if it cannot be read: the first page comes
// from memory, older ones from the database, as GET /api/topics.
func (s *Server) noscriptPage(c *gin.Context) []byte {
	limit := s.feed.Limit()
	before, err := strconv.ParseInt(c.Query("before"), 10, 64)
	if err != nil || before < 1 {
		before = 0
	}
	var topics []wire.Topic
	ok := false
	if before == 0 {
		// The feed answers with the list's JSON when it has it encoded.
		var page topic.Page
		var encoded []byte
		if page, encoded, ok = s.feed.List(limit); ok {
			if encoded != nil {
				var list wire.List
				ok = json.Unmarshal(encoded, &list) == nil
				topics = list.Topics
			} else {
				topics = wire.TopicsOf(page.Topics)
			}
		}
	}
	if !ok {
		page, err := s.store.Page(c.Request.Context(), before, limit)
		if err != nil {
			return nil
		}
		topics = wire.TopicsOf(page.Topics)
	}
	var older int64
	if len(topics) == limit && limit > 0 {
		older = topics[len(topics)-1].ID
	}
	var buf bytes.Buffer
	if err := noscriptList.Execute(&buf, map[string]any{"Topics": topics, "Before": before, "Older": older}); err != nil {
		return nil
	}
	return buf.Bytes()
}

// heartbeatMeta in index.html is replaced by this replica's SSE_HEARTBEAT:
// the page takes a stream silent for twice that to be held back.
var heartbeatMeta = []byte(`<meta name="bbs-heartbeat" content="15000">`)

func (s *Server) page(c *gin.Context) {
	index, err := fs.ReadFile(web.Assets(), "index.html")
	if err != nil {
		s.failErr(c, err)
		return
	}
	beat := fmt.Sprintf(`<meta name="bbs-heartbeat" content="%d">`, s.feed.Heartbeat().Milliseconds())
	index = bytes.Replace(index, heartbeatMeta, []byte(beat), 1)
	if list := s.noscriptPage(c); list != nil {
		index = bytes.Replace(index, noscriptMark, list, 1)
	}
	pageHeaders(c)
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/html; charset=utf-8", index)
}

func (s *Server) static(c *gin.Context) {
	pageHeaders(c)
	c.Header("Cache-Control", "no-cache")
	c.FileFromFS(c.Param("file"), http.FS(web.Assets()))
}

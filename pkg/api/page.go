package api

import (
	"io/fs"
	"net/http"

	"github.com/bbsboard/bbs/pkg/web"
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

func (s *Server) page(c *gin.Context) {
	index, err := fs.ReadFile(web.Assets(), "index.html")
	if err != nil {
		s.failErr(c, err)
		return
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

// Package web provides the board's page: HTML, JS and CSS embedded in the binary.
package web

import (
	"embed"
	"io/fs"
)

// The files are listed one by one so that nothing else dropped into static/
// (editor backups, notes) ends up being served.
//
//go:embed static/index.html static/app.css static/favicon.svg
//go:embed static/main.js static/board.js static/dom.js static/http.js static/i18n.js
//go:embed static/items.js static/list.js static/post.js static/render.js static/share.js
//go:embed static/state.js static/storage.js static/stream.js static/time.js
var embedded embed.FS

// assets is embedded rooted at static/, so callers see "index.html" rather
// than "static/index.html".
var assets = mustSub(embedded, "static")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		// fs.Sub only fails for an invalid path; "static" is a constant.
		panic(err)
	}
	return sub
}

// Assets returns the embedded files (index.html, the script's ES modules
// with main.js first, app.css, favicon.svg) rooted at the asset directory.
func Assets() fs.FS {
	return assets
}

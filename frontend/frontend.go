// Package frontend serves the Creator app: the Vite build in dist/, embedded
// in the binary so `rendertrust serve` shows the app at / with nothing but
// Go. The bundle is committed; `make frontend-check` fails when it differs
// from a fresh build of the sources next to it.
package frontend

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// Cache lifetimes of the app's files.
const (
	// hashedMaxAge: files under assets/ carry a content hash in their name,
	// so a name never changes meaning.
	hashedMaxAge = "public, max-age=31536000, immutable"
	// pageCache: index.html names the current assets; always revalidate.
	pageCache = "no-cache"
)

// hashedDir holds the content-hashed build outputs.
const hashedDir = "assets/"

// indexFile is the page every client route answers with.
const indexFile = "index.html"

// Handler returns the app's handler: files of the bundle by path, and
// index.html for any other path without an extension (the app's own routes,
// e.g. /jobs). A missing file with an extension is a 404, so a stale asset
// never gets a page in its place.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time
	}
	return &handler{files: sub}
}

type handler struct{ files fs.FS }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = indexFile
	}
	body, err := fs.ReadFile(h.files, name)
	if err != nil {
		if path.Ext(name) != "" {
			http.NotFound(w, r)
			return
		}
		name = indexFile // a client route
		if body, err = fs.ReadFile(h.files, name); err != nil {
			http.Error(w, "the app is not built into this binary", http.StatusNotFound)
			return
		}
	}
	hdr := w.Header()
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		hdr.Set("Content-Type", ct)
	}
	if strings.HasPrefix(name, hashedDir) {
		hdr.Set("Cache-Control", hashedMaxAge)
	} else {
		hdr.Set("Cache-Control", pageCache)
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	if name == indexFile {
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	sum := sha256.Sum256(body)
	hdr.Set("ETag", `"`+hex.EncodeToString(sum[:etagBytes])+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// contentSecurityPolicy allows the app's own scripts and styles only; it
// may fetch anywhere, because the proof check reads the anchored root from
// whichever chain JSON-RPC endpoint the creator names.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src *; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// etagBytes is how much of a file's SHA-256 its ETag carries.
const etagBytes = 16

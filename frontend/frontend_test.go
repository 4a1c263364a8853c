package frontend

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// asset returns the path of one built file under assets/ with the extension.
func asset(t *testing.T, ext string) string {
	t.Helper()
	entries, err := fs.ReadDir(dist, "dist/assets")
	if err != nil {
		t.Fatalf("the bundle has no assets/: %v", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ext) {
			return "/assets/" + e.Name()
		}
	}
	t.Fatalf("no %s asset in the bundle", ext)
	return ""
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestServesTheApp(t *testing.T) {
	h := Handler()
	js, css := asset(t, ".js"), asset(t, ".css")
	cases := []struct {
		path, wantType, wantCache string
		wantStatus                int
	}{
		{"/", "text/html; charset=utf-8", pageCache, 200},
		{"/index.html", "text/html; charset=utf-8", pageCache, 200},
		{"/jobs", "text/html; charset=utf-8", pageCache, 200},            // a client route
		{"/credits/history", "text/html; charset=utf-8", pageCache, 200}, // a nested client route
		{js, "text/javascript; charset=utf-8", hashedMaxAge, 200},        // hashed: cached for good
		{css, "text/css; charset=utf-8", hashedMaxAge, 200},
		{"/assets/index-gone.js", "", "", 404},                            // a stale asset is not answered with the page
		{"/../../etc/passwd", "text/html; charset=utf-8", pageCache, 200}, // cleaned to /etc/passwd: a client route
	}
	for _, c := range cases {
		res := get(t, h, http.MethodGet, c.path)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != c.wantStatus {
			t.Errorf("GET %s = %d, want %d", c.path, res.StatusCode, c.wantStatus)
			continue
		}
		if c.wantStatus != 200 {
			continue
		}
		if got := res.Header.Get("Content-Type"); got != c.wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.wantType)
		}
		if got := res.Header.Get("Cache-Control"); got != c.wantCache {
			t.Errorf("GET %s: Cache-Control %q, want %q", c.path, got, c.wantCache)
		}
		if c.wantType == "text/html; charset=utf-8" && !strings.Contains(string(body), `<div id="root">`) {
			t.Errorf("GET %s: not the app's page: %.200s", c.path, body)
		}
	}
}

func TestIndexNamesItsAssetsAndRevalidates(t *testing.T) {
	h := Handler()
	res := get(t, h, http.MethodGet, "/")
	body, _ := io.ReadAll(res.Body)
	if js := asset(t, ".js"); !strings.Contains(string(body), js) {
		t.Errorf("index.html does not load %s", js)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("index.html has no Content-Security-Policy")
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if again := get(t, h, http.MethodGet, "/", "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag = %d, want 304", again.StatusCode)
	}
	if head := get(t, h, http.MethodHead, "/"); head.StatusCode != 200 {
		t.Errorf("HEAD / = %d", head.StatusCode)
	}
	if post := get(t, h, http.MethodPost, "/"); post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", post.StatusCode)
	}
}

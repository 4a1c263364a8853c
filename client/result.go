package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// resultFileMode is the permission of a downloaded result.
const resultFileMode = 0o644

// ResultLink is where a COMPLETED job's result can be downloaded, without a
// token, until the link expires.
type ResultLink struct {
	DownloadURL  string `json:"download_url"`
	ExpiresIn    int    `json:"expires_in"`    // seconds
	ResultSHA256 string `json:"result_sha256"` // lower-case hex, as the completion event recorded
	ResultBytes  int64  `json:"result_bytes"`
}

// ResultLink returns a download link for a COMPLETED job's result. It
// returns an *APIError: ErrNotFound, or ErrConflict when the job is not
// COMPLETED.
func (c *Client) ResultLink(ctx context.Context, id string) (ResultLink, error) {
	p, err := pathID("job", id)
	if err != nil {
		return ResultLink{}, err
	}
	var l ResultLink
	err = c.do(ctx, request{method: http.MethodGet, path: "/api/v1/jobs/" + p + "/result", auth: true}, &l)
	return l, err
}

// Download is a result written to disk.
type Download struct {
	Path   string // where the result was written
	SHA256 string // lower-case hex, checked against the job's recorded hash
	Bytes  int64
}

// DownloadResult downloads a COMPLETED job's result to path, like the
// guide's download_result(job_id, output_path). An empty path means
// "<id>.result" in the working directory; an existing directory means
// "<id>.result" in it. The link is fetched with the session; the download
// itself carries no token. The bytes must hash to the SHA-256 recorded at
// completion and are written atomically: path holds the whole, verified
// result or is left untouched. It returns the errors of ResultLink, an
// *APIError for a refused download (ErrForbidden: the link expired), a
// *ChecksumError (errors.Is ErrChecksumMismatch) for bytes that do not
// match, and file system errors.
func (c *Client) DownloadResult(ctx context.Context, id, path string) (Download, error) {
	link, err := c.ResultLink(ctx, id)
	if err != nil {
		return Download{}, err
	}
	if path, err = resultPath(id, path); err != nil {
		return Download{}, err
	}
	resp, err := c.fetch(ctx, link.DownloadURL)
	if err != nil {
		return Download{}, err
	}
	defer discard(resp)
	d, err := writeVerified(resp.Body, path, link)
	if err != nil {
		return Download{}, fmt.Errorf("client: download result of job %s: %w", id, err)
	}
	return d, nil
}

// resultPath resolves DownloadResult's path argument.
func resultPath(id, path string) (string, error) {
	name := strings.NewReplacer("/", "_", `\`, "_").Replace(id) + ".result"
	if path == "" {
		return name, nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return filepath.Join(path, name), nil
	}
	return path, nil
}

// fetch GETs a download link, without the session's token. It returns an
// *APIError for an error answer.
func (c *Client) fetch(ctx context.Context, link string) (*http.Response, error) {
	u, err := c.base.Parse(link) // an absolute link as is; a relative one against the base URL
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("client: download link %q is not an http(s) URL", link)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("client: download: %w", err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: download: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer discard(resp)
		return nil, ErrorFromResponse(resp)
	}
	return resp, nil
}

// writeVerified streams r into a temporary file beside path, hashing it,
// and renames it to path only if its size and SHA-256 are the link's. It
// reads at most one byte more than the recorded size.
func writeVerified(r io.Reader, path string, link ResultLink) (d Download, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return Download{}, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, link.ResultBytes+1))
	if err != nil {
		return Download{}, err
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n != link.ResultBytes || !strings.EqualFold(got, link.ResultSHA256) {
		return Download{}, &ChecksumError{Want: strings.ToLower(link.ResultSHA256), Got: got, WantBytes: link.ResultBytes, GotBytes: n}
	}
	if err := tmp.Chmod(resultFileMode); err != nil {
		return Download{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Download{}, err
	}
	if err := tmp.Close(); err != nil {
		return Download{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Download{}, err
	}
	return Download{Path: path, SHA256: got, Bytes: n}, nil
}

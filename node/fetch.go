package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/rendertrust/rendertrust/blobstore"
)

// Limits of fetching inputs.
const (
	// InputBytesMaxDefault bounds an input when the fetcher sets no limit.
	InputBytesMaxDefault = 2 << 30
	// InputTimeoutDefault bounds one fetch when the fetcher sets no timeout.
	InputTimeoutDefault = 10 * time.Minute
	// redirectsMax bounds the redirects an https fetch follows.
	redirectsMax = 5
)

// Errors of fetching an input; each fails the attempt with its message.
var (
	// ErrInputNotFound: the server, bucket or gateway has no such input.
	ErrInputNotFound = errors.New("input not found")
	// ErrInputTooLarge: the input is larger than the node takes.
	ErrInputTooLarge = errors.New("input exceeds the size limit")
	// ErrInputCID: an ipfs:// reference whose CID is malformed or
	// unsupported, or whose content does not hash to it.
	ErrInputCID = errors.New("input does not match its CID")
)

// S3Getter opens an object of a bucket; blobstore.S3Reader is one.
type S3Getter interface {
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, int64, error)
}

var _ S3Getter = (*blobstore.S3Reader)(nil)

// Fetcher fetches job inputs named by https://, s3:// and ipfs:// URIs
// into files, each bounded in size and time.
type Fetcher struct {
	// BytesMax bounds an input; 0 means InputBytesMaxDefault.
	BytesMax int64
	// Timeout bounds one fetch; 0 means InputTimeoutDefault.
	Timeout time.Duration
	// HTTP fetches https:// inputs and talks to the IPFS gateway; nil
	// means a default client.
	HTTP *http.Client
	// S3 reads s3://bucket/key inputs with the node's own credentials; nil
	// refuses them.
	S3 S3Getter
	// IPFSGateway is an IPFS HTTP gateway's base URL
	// ("http://127.0.0.1:8080"); "" refuses ipfs:// inputs.
	IPFSGateway string
}

var _ InputFetcher = (*Fetcher)(nil)

// Fetch writes the input ref names to path and returns it with its
// SHA-256. It returns an error wrapping ErrInputNotFound, ErrInputTooLarge
// or ErrInputCID, or one naming what else went wrong; a failed fetch
// leaves no file.
func (f *Fetcher) Fetch(ctx context.Context, ref, path string) (in Input, err error) {
	timeout := cmpOr(f.Timeout, InputTimeoutDefault)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("fetching the input took longer than %s", timeout))
	defer cancel()
	u, err := url.Parse(ref)
	if err != nil {
		return Input{}, fmt.Errorf("input %q: %w", ref, err)
	}
	var body io.ReadCloser
	size := int64(-1)
	verify := func(string) error { return nil }
	switch u.Scheme {
	case "https":
		body, size, err = f.openHTTPS(ctx, u.String())
	case "s3":
		body, size, err = f.openS3(ctx, u)
	case "ipfs":
		body, size, verify, err = f.openIPFS(ctx, u)
	default:
		err = fmt.Errorf("input %q: scheme %q is not fetched (https, s3 or ipfs)", ref, u.Scheme)
	}
	if err != nil {
		return Input{}, fetchErr(ctx, err)
	}
	defer body.Close()
	in, err = f.save(body, size, path)
	if err == nil {
		err = verify(in.SHA256)
	}
	if err != nil {
		os.Remove(path)
		return Input{}, fetchErr(ctx, err)
	}
	return in, nil
}

// fetchErr names the timeout when ctx's deadline caused err.
func fetchErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return err
}

// save copies body (of size bytes, -1 when unknown) to a new file at path,
// bounded by the fetcher's limit, and hashes it.
func (f *Fetcher) save(body io.Reader, size int64, path string) (Input, error) {
	limit := cmpOr(f.BytesMax, InputBytesMaxDefault)
	if size > limit {
		return Input{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInputTooLarge, size, limit)
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Input{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(file, h), io.LimitReader(body, limit+1))
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return Input{}, fmt.Errorf("download: %w", err)
	case n > limit:
		return Input{}, fmt.Errorf("%w: more than %d bytes", ErrInputTooLarge, limit)
	}
	return Input{Path: path, SHA256: hex.EncodeToString(h.Sum(nil)), Bytes: n}, nil
}

func (f *Fetcher) client() *http.Client {
	c := http.Client{}
	if f.HTTP != nil {
		c = *f.HTTP
	}
	return &c
}

// openHTTPS GETs an https:// input, following redirects only to https.
func (f *Fetcher) openHTTPS(ctx context.Context, ref string) (io.ReadCloser, int64, error) {
	c := f.client()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" || len(via) >= redirectsMax {
			return fmt.Errorf("redirect to %s refused (https only, at most %d)", req.URL.Redacted(), redirectsMax)
		}
		return nil
	}
	return get(ctx, c, ref, nil)
}

// get sends a GET and returns the body of a 200 answer, or an error that
// names the status (ErrInputNotFound for 404 and 410).
func get(ctx context.Context, c *http.Client, ref string, h http.Header) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
	if err != nil {
		return nil, 0, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "rendertrust-node")
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		err = fmt.Errorf("%s: %w (%s)", req.URL.Redacted(), ErrInputNotFound, resp.Status)
	default:
		err = fmt.Errorf("%s: answered %s", req.URL.Redacted(), resp.Status)
	}
	resp.Body.Close()
	return nil, 0, err
}

// openS3 opens s3://bucket/key with the node's credentials.
func (f *Fetcher) openS3(ctx context.Context, u *url.URL) (io.ReadCloser, int64, error) {
	key := strings.TrimPrefix(u.Path, "/")
	switch {
	case f.S3 == nil:
		return nil, 0, fmt.Errorf("input %s: this node has no S3 access configured", u)
	case key == "":
		return nil, 0, fmt.Errorf("input %s: no object key", u)
	}
	body, size, err := f.S3.Get(ctx, u.Host, key)
	if errors.Is(err, blobstore.ErrNotFound) {
		err = fmt.Errorf("%w: %w", ErrInputNotFound, err)
	}
	return body, size, err
}

// openIPFS fetches ipfs://CID from the gateway as the raw block (the
// trustless gateway's ?format=raw), and returns a check of the content's
// SHA-256 against the CID. Only CIDs whose block is the content itself
// can be checked that way: CIDv1 with the raw codec and a sha2-256
// multihash (`ipfs add --cid-version 1 --raw-leaves` of a file that fits
// one block). Others — CIDv0 and dag-pb, whose block wraps the content —
// are refused rather than trusted unchecked.
func (f *Fetcher) openIPFS(ctx context.Context, u *url.URL) (io.ReadCloser, int64, func(string) error, error) {
	c, err := cid.Decode(u.Host)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %q is not a CID: %v", ErrInputCID, u.Host, err)
	}
	switch {
	case u.Path != "" && u.Path != "/":
		return nil, 0, nil, fmt.Errorf("input %s: paths inside a CID are not fetched; name the file's own CID", u)
	case f.IPFSGateway == "":
		return nil, 0, nil, fmt.Errorf("input %s: this node has no IPFS gateway configured", u)
	case c.Type() != cid.Raw:
		return nil, 0, nil, fmt.Errorf("%w: %s has codec 0x%x; this node verifies raw-codec CIDs only (CIDv1, ipfs add --cid-version 1 --raw-leaves)", ErrInputCID, c, c.Type())
	}
	mh, err := multihash.Decode(c.Hash())
	if err != nil || mh.Code != multihash.SHA2_256 || mh.Length != sha256.Size {
		return nil, 0, nil, fmt.Errorf("%w: %s is not a sha2-256 CID", ErrInputCID, c)
	}
	want := hex.EncodeToString(mh.Digest)
	ref := strings.TrimRight(f.IPFSGateway, "/") + "/ipfs/" + c.String() + "?format=raw"
	body, size, err := get(ctx, f.client(), ref, http.Header{"Accept": {"application/vnd.ipld.raw"}})
	verify := func(got string) error {
		if got != want {
			return fmt.Errorf("%w: the gateway's content hashes to sha256 %s, the CID %s names %s", ErrInputCID, got, c, want)
		}
		return nil
	}
	return body, size, verify, err
}

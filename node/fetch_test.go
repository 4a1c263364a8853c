package node

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/multiformats/go-multihash"

	"github.com/rendertrust/rendertrust/blobstore"
)

// fetchCase is one fetch and what it must give.
type fetchCase struct {
	name, ref string
	want      []byte // the content, when the fetch succeeds
	err       error  // else the error it wraps
	errText   string // or a text the error contains
}

func runFetchCases(t *testing.T, f *Fetcher, cases []fetchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "input")
			in, err := f.Fetch(context.Background(), tc.ref, path)
			if tc.want == nil {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("Fetch(%s) err = %v, want %v %q", tc.ref, err, tc.err, tc.errText)
				}
				if _, serr := os.Stat(path); serr == nil {
					t.Error("a failed fetch left its file")
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch(%s): %v", tc.ref, err)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, tc.want) || in.SHA256 != sha256Hex(tc.want) || in.Bytes != int64(len(tc.want)) || in.Path != path {
				t.Fatalf("Fetch(%s) = %+v with %q, want %q", tc.ref, in, got, tc.want)
			}
		})
	}
}

// TestFetchHTTPS fetches from a local HTTPS server: the content and its
// hash; a missing file; a file over the limit, announced or not; a
// redirect to plain http.
func TestFetchHTTPS(t *testing.T) {
	scene := []byte("BLENDER-v300 scene bytes")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/scene.blend":
			w.Write(scene)
		case "/big":
			w.Write(bytes.Repeat([]byte("x"), 100))
		case "/big-chunked":
			w.(http.Flusher).Flush() // no Content-Length
			w.Write(bytes.Repeat([]byte("x"), 100))
		case "/downgrade":
			http.Redirect(w, r, "http://example.com/scene.blend", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := &Fetcher{HTTP: srv.Client(), BytesMax: 64}
	runFetchCases(t, f, []fetchCase{
		{name: "Found", ref: srv.URL + "/scene.blend", want: scene},
		{name: "ErrInputNotFound", ref: srv.URL + "/missing.blend", err: ErrInputNotFound},
		{name: "ErrInputTooLarge", ref: srv.URL + "/big", err: ErrInputTooLarge},
		{name: "ErrInputTooLargeUnannounced", ref: srv.URL + "/big-chunked", err: ErrInputTooLarge},
		{name: "RedirectToHTTPRefused", ref: srv.URL + "/downgrade", errText: "https only"},
		{name: "UnknownScheme", ref: "ftp://example.com/x", errText: "not fetched"},
	})
}

// TestFetchS3 fetches s3://bucket/key from the in-process S3 protocol
// server (gofakes3), with the node's own credentials and an endpoint.
func TestFetchS3(t *testing.T) {
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer fake.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "node-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "node-secret")
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	admin := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(fake.URL); o.UsePathStyle = true })
	scene := []byte("scene in a bucket")
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("scenes")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("scenes"), Key: aws.String("shots/scene.blend"), Body: bytes.NewReader(scene)}); err != nil {
		t.Fatal(err)
	}
	r, err := blobstore.OpenS3Reader(ctx, blobstore.S3ReaderConfig{Endpoint: fake.URL, Region: "us-east-1", PathStyle: true, NoInstanceMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	runFetchCases(t, &Fetcher{S3: r, BytesMax: 10}, []fetchCase{
		{name: "ErrInputTooLarge", ref: "s3://scenes/shots/scene.blend", err: ErrInputTooLarge},
	})
	runFetchCases(t, &Fetcher{S3: r}, []fetchCase{
		{name: "Found", ref: "s3://scenes/shots/scene.blend", want: scene},
		{name: "ErrInputNotFoundKey", ref: "s3://scenes/shots/missing.blend", err: ErrInputNotFound},
		{name: "ErrInputNotFoundBucket", ref: "s3://nobucket/scene.blend", err: ErrInputNotFound},
		{name: "NoKey", ref: "s3://scenes", errText: "no object key"},
	})
	runFetchCases(t, &Fetcher{}, []fetchCase{{name: "NoS3Configured", ref: "s3://scenes/shots/scene.blend", errText: "no S3 access"}})
}

// rawCID returns the CIDv1 (raw codec, sha2-256) of data.
func rawCID(t *testing.T, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.NewPrefixV1(cid.Raw, multihash.SHA2_256).Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFetchIPFS fetches ipfs://CID from a local stand-in for an IPFS
// gateway that serves CID-addressed raw blocks: the content, checked
// against the CID; a gateway that serves other bytes; a malformed CID; a
// CIDv0 (dag-pb, refused: its block is not the content); an unknown CID.
func TestFetchIPFS(t *testing.T) {
	frame := []byte("a frame, addressed by its content")
	good, lied := rawCID(t, frame), rawCID(t, []byte("what was asked for"))
	blocks := map[string][]byte{good.String(): frame, lied.String(): []byte("something else")}
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := blocks[strings.TrimPrefix(r.URL.Path, "/ipfs/")]
		if !ok || r.URL.Query().Get("format") != "raw" || r.Header.Get("Accept") != "application/vnd.ipld.raw" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.ipld.raw")
		w.Write(b)
	}))
	defer gateway.Close()
	v0 := cid.NewCidV0(mustSum(t, frame))
	runFetchCases(t, &Fetcher{IPFSGateway: gateway.URL}, []fetchCase{
		{name: "Found", ref: "ipfs://" + good.String(), want: frame},
		{name: "ErrInputCIDMismatch", ref: "ipfs://" + lied.String(), err: ErrInputCID, errText: "hashes to"},
		{name: "ErrInputCIDMalformed", ref: "ipfs://bafynotacid", err: ErrInputCID},
		{name: "ErrInputCIDv0Unverifiable", ref: "ipfs://" + v0.String(), err: ErrInputCID, errText: "raw-codec"},
		{name: "ErrInputNotFound", ref: "ipfs://" + rawCID(t, []byte("nobody has this")).String(), err: ErrInputNotFound},
		{name: "PathRefused", ref: "ipfs://" + good.String() + "/frame.png", errText: "paths inside a CID"},
	})
	runFetchCases(t, &Fetcher{}, []fetchCase{{name: "NoGateway", ref: "ipfs://" + good.String(), errText: "no IPFS gateway"}})
}

func mustSum(t *testing.T, data []byte) multihash.Multihash {
	t.Helper()
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

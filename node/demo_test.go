package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runDemo(t *testing.T, ex Executor, job Job) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := ex.Run(context.Background(), job, &out); err != nil {
		t.Fatalf("%T: %v", ex, err)
	}
	return out.Bytes()
}

// TestDemoRender: the test card is a real PNG of the payload's size (the
// default without one), the same for the same job and input, different
// for another job or input, and labelled as a demo in its text chunks.
func TestDemoRender(t *testing.T) {
	ref := Job{ID: "job-1", Type: "render", PayloadRef: "s3://bucket/scene.blend", InputErr: errors.New("no credentials")}
	card := runDemo(t, DemoRender{}, ref)
	img, err := png.Decode(bytes.NewReader(card))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != DemoImageWidthDefault || b.Dy() != DemoImageHeightDefault {
		t.Errorf("default size %v, want %d×%d", b, DemoImageWidthDefault, DemoImageHeightDefault)
	}
	for _, want := range []string{DemoNote, "input not fetched: no credentials", "job-1"} {
		if !bytes.Contains(card, []byte(want)) {
			t.Errorf("card's text chunks lack %q", want)
		}
	}
	if again := runDemo(t, DemoRender{}, ref); !bytes.Equal(again, card) {
		t.Error("the same job and input drew another card")
	}
	other := ref
	other.ID = "job-2"
	if bytes.Equal(runDemo(t, DemoRender{}, other), card) {
		t.Error("another job drew the same card")
	}
	other = ref
	other.PayloadRef = "s3://bucket/other.blend"
	if bytes.Equal(runDemo(t, DemoRender{}, other), card) {
		t.Error("another input drew the same card")
	}
	sized := runDemo(t, DemoRender{}, Job{ID: "job-3", Payload: `{"width":100,"height":50}`})
	cfg, err := png.DecodeConfig(bytes.NewReader(sized))
	if err != nil || cfg.Width != 100 || cfg.Height != 50 {
		t.Errorf("sized card %d×%d, %v; want 100×50", cfg.Width, cfg.Height, err)
	}
	err = DemoRender{}.Run(context.Background(), Job{ID: "j", Payload: `{"width":100000}`}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "pixels") {
		t.Errorf("oversized card: err %v, want the size refused", err)
	}
}

// TestDemoInference: the answer is deterministic in the input and labelled.
func TestDemoInference(t *testing.T) {
	job := Job{ID: "j", Type: "inference", Payload: `{"prompt":"a red fox jumps over the lazy dog"}`}
	var r DemoInferenceResult
	out := runDemo(t, DemoInference{}, job)
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Note != DemoNote || r.Executor != "demo" || r.Input.Source != "inline" {
		t.Errorf("result %+v: not labelled as a demo on inline input", r)
	}
	if r.Answer.Words != 8 || r.Answer.LongestWord != "jumps" || r.Answer.Label == "" {
		t.Errorf("answer %+v, want 8 words, longest \"jumps\", a label", r.Answer)
	}
	if again := runDemo(t, DemoInference{}, job); !bytes.Equal(again, out) {
		t.Error("the same input gave another answer")
	}
}

// TestDemoGenericFetchedInput: with a fetched input the digest is the
// input's, marked "fetched".
func TestDemoGenericFetchedInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "input")
	if err := os.WriteFile(path, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := Input{Path: path, SHA256: sha256Hex([]byte("hello")), Bytes: 5}
	var r DemoGenericResult
	if err := json.Unmarshal(runDemo(t, DemoGeneric{}, Job{ID: "j", PayloadRef: "https://x/y", Input: &in}), &r); err != nil {
		t.Fatal(err)
	}
	if r.Input.Source != "fetched" || r.Input.SHA256 != in.SHA256 || r.Input.Bytes != 5 || !strings.HasPrefix(r.Note, DemoNote) {
		t.Errorf("result %+v, want the fetched input's digest, labelled", r)
	}
}

// fetchFunc is an InputFetcher made of a function.
type fetchFunc func(ctx context.Context, ref, path string) (Input, error)

func (f fetchFunc) Fetch(ctx context.Context, ref, path string) (Input, error) {
	return f(ctx, ref, path)
}

// TestPrepareInput: a command requires its input (a failed fetch fails
// the attempt), a demo takes it when it can, and echo never fetches.
func TestPrepareInput(t *testing.T) {
	failing := fetchFunc(func(context.Context, string, string) (Input, error) { return Input{}, errors.New("404 not found") })
	job := Job{ID: "j", PayloadRef: "https://example.com/scene.blend", WorkDir: t.TempDir()}
	if _, err := prepareInput(context.Background(), failing, Command{Args: []string{"true"}}, job); err == nil || !strings.Contains(err.Error(), "404 not found") {
		t.Errorf("command: err %v, want the fetch error", err)
	}
	if _, err := prepareInput(context.Background(), nil, Command{Args: []string{"true"}}, job); !errors.Is(err, errNoFetcher) {
		t.Errorf("command without fetcher: err %v, want errNoFetcher", err)
	}
	got, err := prepareInput(context.Background(), failing, DemoRender{}, job)
	if err != nil || got.InputErr == nil || got.Input != nil {
		t.Errorf("demo: %+v, %v; want InputErr set and no error", got, err)
	}
	called := false
	spy := fetchFunc(func(context.Context, string, string) (Input, error) { called = true; return Input{}, nil })
	if _, err := prepareInput(context.Background(), spy, Echo{}, job); err != nil || called {
		t.Errorf("echo: fetched %v, err %v; want no fetch", called, err)
	}
}

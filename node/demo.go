package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"strings"
	"unicode"
)

// DemoNote is what every demo executor's result says about itself.
const DemoNote = "demo executor — configure a real one with --render-cmd/--inference-cmd"

// Limits of the demo executors.
const (
	// DemoImageWidthDefault and DemoImageHeightDefault size a test card
	// whose payload gives no dimensions.
	DemoImageWidthDefault  = 640
	DemoImageHeightDefault = 360
	// DemoImageSideMin and DemoImageSideMax bound the dimensions a payload
	// may ask for, in pixels.
	DemoImageSideMin = 16
	DemoImageSideMax = 4096
	// demoReadBytesMax bounds how much of an input the demo inference reads.
	demoReadBytesMax = 1 << 20
)

// The demo executors, for a node that has no real render, inference or
// generic command: the local node of `serve --dev`, so that every example
// of the creator guide completes on a fresh checkout. They do real,
// deterministic work and label their results as demo results (DemoNote).
//
// Their input is optional (InputOptional): the node fetches a URI payload
// when it can and the demo works from its content. When it cannot — the
// guide's own first example names s3://bucket/scene.blend, which a dev
// machine has no credentials for — the demo works from the SHA-256 of the
// reference text instead and says so in the result ("source":
// "reference", with the fetch error). A real command (Command) requires
// its input: there a failed fetch fails the attempt with the reason.
type (
	// DemoRender is the demo render executor: a PNG test card.
	DemoRender struct{}
	// DemoInference is the demo inference executor: a JSON answer from a
	// small deterministic function of the input.
	DemoInference struct{}
	// DemoGeneric is the demo generic executor: the input's digest, as JSON.
	DemoGeneric struct{}
)

// Demo returns the built-in executors plus the demo executors for render,
// inference and generic: every job type, as the dev node runs them.
func Demo() map[string]Executor {
	m := Builtin()
	m["render"], m["inference"], m["generic"] = DemoRender{}, DemoInference{}, DemoGeneric{}
	return m
}

// InputNeed returns InputOptional.
func (DemoRender) InputNeed() InputNeed { return InputOptional }

// InputNeed returns InputOptional.
func (DemoInference) InputNeed() InputNeed { return InputOptional }

// InputNeed returns InputOptional.
func (DemoGeneric) InputNeed() InputNeed { return InputOptional }

// DemoInput describes, in a demo result, what the demo worked from.
type DemoInput struct {
	// Source is "fetched" (the URI's content), "inline" (the inline JSON)
	// or "reference" (the URI could not be fetched: the reference text
	// itself, see FetchError).
	Source     string `json:"source"`
	Ref        string `json:"ref,omitempty"`
	SHA256     string `json:"sha256"` // of what Source names
	Bytes      int64  `json:"bytes"`
	FetchError string `json:"fetch_error,omitempty"`
}

// demoInput returns what the demo works from for job, and up to
// demoReadBytesMax of its content.
func demoInput(job Job) (DemoInput, []byte, error) {
	switch {
	case job.Input != nil:
		data, err := readHead(job.Input.Path, demoReadBytesMax)
		return DemoInput{Source: "fetched", Ref: job.PayloadRef, SHA256: job.Input.SHA256, Bytes: job.Input.Bytes}, data, err
	case job.PayloadRef != "":
		in := DemoInput{Source: "reference", Ref: job.PayloadRef, SHA256: sha256Hex([]byte(job.PayloadRef)), Bytes: int64(len(job.PayloadRef))}
		if job.InputErr != nil {
			in.FetchError = job.InputErr.Error()
		}
		return in, []byte(job.PayloadRef), nil
	}
	return DemoInput{Source: "inline", SHA256: sha256Hex([]byte(job.Payload)), Bytes: int64(len(job.Payload))}, []byte(job.Payload), nil
}

func readHead(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Run draws a test card, deterministic in the job id and the input's
// SHA-256, at the payload's {"width", "height"} when given, and writes it
// as a PNG whose text chunks carry DemoNote and the input it was made from.
func (DemoRender) Run(ctx context.Context, job Job, out io.Writer) error {
	w, h, err := demoDimensions(job.Payload)
	if err != nil {
		return err
	}
	in, _, err := demoInput(job)
	if err != nil {
		return err
	}
	seed := sha256.Sum256([]byte(job.ID + "\x00" + in.SHA256))
	var buf bytes.Buffer
	if err := png.Encode(&buf, testCard(w, h, seed)); err != nil {
		return err
	}
	inputText := fmt.Sprintf("%s sha256:%s", in.Source, in.SHA256)
	if in.FetchError != "" {
		inputText += " (input not fetched: " + in.FetchError + ")"
	}
	return writePNGWithText(out, buf.Bytes(), [][2]string{
		{"Software", "RenderTrust " + DemoNote},
		{"Comment", DemoNote},
		{"RenderTrust-Job", job.ID},
		{"RenderTrust-Input", inputText},
	})
}

// demoDimensions returns the test card's size: the inline payload's
// "width" and "height" when given, else the defaults.
func demoDimensions(payload string) (int, int, error) {
	var p struct {
		Width  *int `json:"width"`
		Height *int `json:"height"`
	}
	w, h := DemoImageWidthDefault, DemoImageHeightDefault
	if strings.HasPrefix(strings.TrimSpace(payload), "{") && json.Unmarshal([]byte(payload), &p) == nil {
		if p.Width != nil {
			w = *p.Width
		}
		if p.Height != nil {
			h = *p.Height
		}
	}
	if w < DemoImageSideMin || w > DemoImageSideMax || h < DemoImageSideMin || h > DemoImageSideMax {
		return 0, 0, fmt.Errorf("render (demo): %d×%d pixels, want each side %d..%d", w, h, DemoImageSideMin, DemoImageSideMax)
	}
	return w, h, nil
}

// cardBars are the test card's colour bars (the SMPTE order).
var cardBars = []color.RGBA{
	{192, 192, 192, 255}, {192, 192, 0, 255}, {0, 192, 192, 255}, {0, 192, 0, 255},
	{192, 0, 192, 255}, {192, 0, 0, 255}, {0, 0, 192, 255},
}

// testCard draws colour bars over the top two thirds, and below them a
// 32×4 grid whose cells show the seed's 128 first bits in a colour taken
// from the seed, inside a border of that colour: two jobs or two inputs
// never share a card.
func testCard(w, h int, seed [32]byte) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	ink := color.RGBA{seed[28], seed[29], seed[30], 255}
	barsH := h * 2 / 3
	const cols, rows = 32, 4
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c color.RGBA
			switch {
			case y < barsH:
				c = cardBars[x*len(cardBars)/w]
			default:
				cell := (y-barsH)*rows/(h-barsH)*cols + x*cols/w
				if seed[cell/8]>>(7-cell%8)&1 == 1 {
					c = ink
				} else {
					c = color.RGBA{16, 16, 16, 255}
				}
			}
			if x < 2 || y < 2 || x >= w-2 || y >= h-2 {
				c = ink
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// writePNGWithText writes the PNG encoded in p with an iTXt chunk (UTF-8
// text) for each keyword/text pair inserted after the header chunk.
func writePNGWithText(out io.Writer, p []byte, texts [][2]string) error {
	const sigAndIHDR = 8 + 4 + 4 + 13 + 4 // signature, then IHDR's length, type, data, CRC
	if len(p) < sigAndIHDR || string(p[12:16]) != "IHDR" {
		return fmt.Errorf("render (demo): unexpected PNG encoding")
	}
	var b bytes.Buffer
	b.Write(p[:sigAndIHDR])
	for _, t := range texts {
		data := append([]byte(t[0]), 0, 0, 0, 0, 0) // keyword, NUL, no compression, method 0, no language, no translation
		data = append(data, t[1]...)
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
		copy(hdr[4:], "iTXt")
		b.Write(hdr[:])
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write(hdr[4:])
		crc.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	b.Write(p[sigAndIHDR:])
	_, err := out.Write(b.Bytes())
	return err
}

// DemoInferenceResult is the demo inference executor's answer.
type DemoInferenceResult struct {
	Executor string    `json:"executor"` // "demo"
	Note     string    `json:"note"`     // DemoNote
	Model    string    `json:"model"`    // DemoInferenceModel
	Input    DemoInput `json:"input"`
	Answer   struct {
		Label       string `json:"label"`        // one of demoLabels, chosen by the input's hash
		Confidence  int    `json:"confidence"`   // percent, from the input's hash
		Words       int    `json:"words"`        // in the input (its first MiB)
		Characters  int    `json:"characters"`   // in the input (its first MiB)
		LongestWord string `json:"longest_word"` // the first of the longest
	} `json:"answer"`
}

// DemoInferenceModel names the demo inference function and its version;
// its answer for a given input never changes within a name.
const DemoInferenceModel = "rendertrust-demo-classifier/v1"

// demoLabels are the demo classifier's labels.
var demoLabels = []string{"landscape", "portrait", "architecture", "abstract", "still life", "animal", "vehicle", "text"}

// Run answers with a DemoInferenceResult for the job's input: the
// text (prompt) of an inline {"prompt": "…"} payload, or the input.
func (DemoInference) Run(ctx context.Context, job Job, out io.Writer) error {
	in, data, err := demoInput(job)
	if err != nil {
		return err
	}
	var p struct {
		Prompt string `json:"prompt"`
	}
	if in.Source == "inline" && json.Unmarshal(data, &p) == nil && p.Prompt != "" {
		data = []byte(p.Prompt)
	}
	sum, _ := hex.DecodeString(in.SHA256)
	r := DemoInferenceResult{Executor: "demo", Note: DemoNote, Model: DemoInferenceModel, Input: in}
	if len(sum) == sha256.Size {
		r.Answer.Label = demoLabels[int(sum[0])%len(demoLabels)]
		r.Answer.Confidence = 50 + int(sum[1])%50
	}
	text := strings.ToValidUTF8(string(data), "")
	r.Answer.Characters = len([]rune(text))
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		r.Answer.Words++
		if len([]rune(w)) > len([]rune(r.Answer.LongestWord)) {
			r.Answer.LongestWord = w
		}
	}
	return json.NewEncoder(out).Encode(r)
}

// DemoGenericResult is the demo generic executor's answer.
type DemoGenericResult struct {
	Executor string    `json:"executor"` // "demo"
	Note     string    `json:"note"`     // DemoNote, and --generic-cmd
	Input    DemoInput `json:"input"`
}

// Run answers with the input's digest.
func (DemoGeneric) Run(ctx context.Context, job Job, out io.Writer) error {
	in, _, err := demoInput(job)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(DemoGenericResult{Executor: "demo", Note: DemoNote + " (generic jobs: --generic-cmd)", Input: in})
}

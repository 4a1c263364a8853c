package creator

import (
	"fmt"
	"io"
	"strings"
)

// The CLI prints what the server sends — job failure messages, cancel
// reasons, node ids, error messages — and a server or node that puts
// terminal escapes in them must not drive the user's terminal. Every
// control character but newline and tab is printed as a \u escape, which
// also keeps --json output valid JSON with the same meaning.

// c1Lead is the first byte of the UTF-8 encoding of U+0080…U+00BF; the C1
// controls (U+0080…U+009F, among them CSI) are c1Lead followed by
// 0x80…0x9F.
const c1Lead = 0xc2

// EscapeControls returns s with its control characters escaped.
func EscapeControls(s string) string {
	var b strings.Builder
	w := &termSafeWriter{w: &b}
	io.WriteString(w, s)
	w.flushPending()
	return b.String()
}

// termSafe returns a writer that escapes control characters on their way
// to w.
func termSafe(w io.Writer) io.Writer {
	if t, ok := w.(*termSafeWriter); ok {
		return t
	}
	return &termSafeWriter{w: w}
}

type termSafeWriter struct {
	w       io.Writer
	pending bool // the last Write ended with c1Lead
}

func (t *termSafeWriter) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+1)
	if t.pending {
		out = append(out, c1Lead) // resolved by p[0] below
		t.pending = false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\n' || c == '\t':
			out = append(out, c)
		case c < 0x20 || c == 0x7f:
			out = fmt.Appendf(out, `\u%04x`, c)
		case c >= 0x80 && c <= 0x9f && len(out) > 0 && out[len(out)-1] == c1Lead:
			out = fmt.Appendf(out[:len(out)-1], `\u%04x`, c)
		case c == c1Lead && i == len(p)-1:
			t.pending = true // its second byte comes with the next Write
		default:
			out = append(out, c)
		}
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushPending writes a c1Lead held back at the end of the last Write.
func (t *termSafeWriter) flushPending() {
	if t.pending {
		t.pending = false
		t.w.Write([]byte{c1Lead})
	}
}

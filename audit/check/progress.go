package check

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// barThrottle is how often a progress bar redraws.
const barThrottle = 200 * time.Millisecond

// bar is one phase's progress bar; a nil *bar shows nothing.
type bar struct {
	pb    *progressbar.ProgressBar
	total int64
	done  int64
}

func newBar(w io.Writer, description string, total uint64) *bar {
	if w == nil {
		return nil
	}
	return &bar{total: int64(total), pb: progressbar.NewOptions64(int64(max(total, 1)),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(barThrottle),
		progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

// itemsBar is a bar counting rows instead of events.
func itemsBar(w io.Writer, description, unit string, total uint64) *bar {
	b := newBar(w, description, total)
	if b != nil {
		progressbar.OptionSetItsString(unit)(b.pb)
	}
	return b
}

// add advances the bar by n, never past its total (a live log grows while
// it is read).
func (b *bar) add(n int) {
	if b == nil {
		return
	}
	n64 := min(int64(n), b.total-b.done)
	if n64 > 0 {
		b.done += n64
		b.pb.Add64(n64)
	}
}

func (b *bar) finish() {
	if b != nil {
		b.pb.Finish()
	}
}

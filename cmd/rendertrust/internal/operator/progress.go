package operator

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rendertrust/rendertrust/audit/check"
)

// barThrottle is how often a progress bar redraws.
const barThrottle = 200 * time.Millisecond

// bar draws one progress bar (count, rate, time left) on w; a nil *bar
// draws nothing. The bar itself is made at the first set, with a known
// length: a bar of unknown length starts a spinner goroutine that reads the
// bar's state without its lock (a data race inside progressbar v3).
type bar struct {
	w                 io.Writer
	description, unit string
	pb                *progressbar.ProgressBar
}

// newBar returns a bar of description counting unit, or nil when w is nil.
func newBar(w io.Writer, description, unit string) *bar {
	if w == nil {
		return nil
	}
	return &bar{w: w, description: description, unit: unit}
}

// set shows done of total; the total may grow between calls (a live log
// grows while it is read).
func (b *bar) set(done, total uint64) {
	if b == nil {
		return
	}
	total = max(total, done, 1)
	if b.pb == nil {
		b.pb = progressbar.NewOptions64(int64(total),
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.description),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(b.unit),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(barThrottle),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
		)
	} else if int64(total) != b.pb.GetMax64() {
		b.pb.ChangeMax64(int64(total))
	}
	b.pb.Set64(int64(done))
}

// finish fills the bar and ends its line.
func (b *bar) finish() {
	if b != nil && b.pb != nil {
		b.pb.Finish()
	}
}

// stepBars returns a check.Config.Progress that draws one bar per step of
// the check on w, or nil when w is nil. Call the returned finish after the
// check, to end a bar that stopped short.
func stepBars(w io.Writer) (progress func(check.Step, uint64), finish func()) {
	if w == nil {
		return nil, func() {}
	}
	var current *bar
	var name string
	progress = func(s check.Step, done uint64) {
		if current == nil || s.Name != name {
			current.finish()
			current, name = newBar(w, s.Name, s.Unit), s.Name
		}
		current.set(done, s.Total)
	}
	return progress, func() { current.finish() }
}

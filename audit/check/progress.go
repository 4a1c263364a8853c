package check

// Step is one of the check's three passes, as Config.Progress reports it.
type Step struct {
	// Name says which pass it is and what it checks, e.g. "check 1/3:
	// entries against the audit log and the anchors".
	Name string
	// Unit is what Total counts: "events" or "rows".
	Unit string
	// Total is how many items the pass has to do.
	Total uint64
}

// progress reports one step's progress to a Config.Progress callback; a
// nil *progress reports nothing.
type progress struct {
	report func(Step, uint64)
	step   Step
	done   uint64
}

// startStep reports that step begins; it returns nil when report is nil.
func startStep(report func(Step, uint64), name, unit string, total uint64) *progress {
	if report == nil {
		return nil
	}
	p := &progress{report: report, step: Step{Name: name, Unit: unit, Total: total}}
	report(p.step, 0)
	return p
}

// add advances the step by n, never past its total (a live log grows while
// it is read).
func (p *progress) add(n int) {
	if p == nil || n <= 0 || p.done >= p.step.Total {
		return
	}
	p.done = min(p.done+uint64(n), p.step.Total)
	p.report(p.step, p.done)
}

// finish reports the step as done.
func (p *progress) finish() {
	if p != nil && p.done < p.step.Total {
		p.done = p.step.Total
		p.report(p.step, p.done)
	}
}

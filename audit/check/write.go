package check

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Write prints what was checked, the notes and every finding with its
// position and entry. It returns w's error.
func (r *Report) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "checked the log up to position %d in %s (%s)\n", r.Head, r.Duration.Round(time.Millisecond), phases(r.Phases))
	fmt.Fprintf(tw, "  entries\t%d read back intact (stored hash = SHA-256(0x00 ‖ bytes)); the postings of %d money events checked\n", r.Events, r.MoneyEvents)
	chain := "not compared with a chain"
	if r.ChainChecked {
		chain = "compared with the chain"
	}
	fmt.Fprintf(tw, "  audit log\t%d entries logged; %d anchored roots reproduced from the entries, %s\n", r.Logged, r.AnchorsChecked, chain)
	fmt.Fprintf(tw, "  merkle tree\t%d stored nodes recomputed\n", r.TreeNodes)
	for _, p := range r.Projections {
		if p.Skipped != "" {
			fmt.Fprintf(tw, "  read model\t%s: not compared: %s\n", p.Name, p.Skipped)
			continue
		}
		fmt.Fprintf(tw, "  read model\t%s: %d %s equal a replay up to position %d\n", p.Name, p.Rows, plural(p.Rows, "row"), p.Position)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "no findings")
		return err
	}
	n := len(r.Findings) + r.FindingsOmitted
	if n == 1 {
		fmt.Fprintln(w, "\n1 FINDING")
	} else {
		fmt.Fprintf(w, "\n%d FINDINGS\n", n)
	}
	fmt.Fprintln(tw, "CHECK\tPOSITION\tENTRY\tWHERE\tWHAT")
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Check, dash(f.Position), orDash(f.EntryID), where(f), oneLine(f.Detail))
	}
	if r.FindingsOmitted > 0 {
		fmt.Fprintf(tw, "…\t\t\t\t%d more findings not listed\n", r.FindingsOmitted)
	}
	return tw.Flush()
}

func phases(ps []Phase) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s %s", p.Name, p.Duration.Round(time.Millisecond))
	}
	return strings.Join(parts, ", ")
}

func plural(n uint64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func where(f Finding) string {
	switch {
	case f.Table != "":
		return f.Table + " " + f.Key
	case f.Key != "":
		return f.Key
	case f.TreeSize != 0:
		return fmt.Sprintf("the anchor of tree size %d", f.TreeSize)
	}
	return "-"
}

func dash(n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

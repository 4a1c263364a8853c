package operator

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/audit/check"
)

// TestWriteCheckReport prints a clean report and one with a finding and
// checks that each says what was checked and names every finding's check,
// position, entry and place.
func TestWriteCheckReport(t *testing.T) {
	base := check.Report{Head: 42, Events: 42, MoneyEvents: 7, Logged: 42, AnchorsChecked: 3, ChainChecked: true, TreeNodes: 80,
		Duration: 1500 * time.Millisecond, Phases: []check.Phase{{Name: "audit log", Duration: time.Second}},
		Projections: []check.ProjectionCheck{{Name: "balances", Position: 42, Rows: 1}, {Name: "jobs", Skipped: "the log is damaged"}}}
	cases := []struct {
		name     string
		findings []check.Finding
		want     []string
	}{
		{"Clean", nil, []string{"checked the log up to position 42", "compared with the chain", "balances: 1 row equal a replay", "jobs: not compared: the log is damaged", "no findings"}},
		{"Finding", []check.Finding{{Check: check.Projection, Position: 17, EntryID: "0193-entry", Table: "rm_jobs", Key: "job_id=j1", Detail: "status\ndiffers"}},
			[]string{"1 FINDING", "CHECK", "projection", "17", "0193-entry", "rm_jobs job_id=j1", "status differs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Findings = tc.findings
			var b bytes.Buffer
			if err := writeCheckReport(&b, &r); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// TestStepBars draws the bars of two steps and checks each one's
// description and unit.
func TestStepBars(t *testing.T) {
	var b bytes.Buffer
	progress, finish := stepBars(&b)
	progress(check.Step{Name: "check 1/3: entries", Unit: "events", Total: 10}, 0)
	progress(check.Step{Name: "check 1/3: entries", Unit: "events", Total: 10}, 10)
	progress(check.Step{Name: "check 3/3: read models", Unit: "rows", Total: 4}, 2)
	finish()
	for _, w := range []string{"check 1/3: entries", "events", "check 3/3: read models", "rows"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("bars lack %q:\n%q", w, b.String())
		}
	}
}

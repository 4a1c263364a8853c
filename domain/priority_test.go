package domain

import (
	"errors"
	"testing"
)

func TestParsePriority(t *testing.T) {
	tests := []struct {
		in      string
		want    Priority
		wantErr error
	}{
		{"low", PriorityLow, nil},
		{"Normal", PriorityNormal, nil},
		{" HIGH ", PriorityHigh, nil},
		{"", PriorityDefault, nil},
		{"urgent", "", ErrInvalidPriority},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePriority(tt.in)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("ParsePriority(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	if !(PriorityHigh.Rank() > PriorityNormal.Rank() && PriorityNormal.Rank() > PriorityLow.Rank()) {
		t.Errorf("ranks not ordered high > normal > low")
	}
	if got := Priority("x").Rank(); got != -1 {
		t.Errorf("invalid Rank() = %d, want -1", got)
	}
}

func TestParseJobType(t *testing.T) {
	for _, typ := range JobTypes() {
		if got, err := ParseJobType(string(typ)); got != typ || err != nil {
			t.Errorf("ParseJobType(%q) = %q, %v", typ, got, err)
		}
	}
	for in, want := range map[string]JobType{"Render": JobRender, "CPU_BENCHMARK": JobCPUBenchmark, "Echo": JobEcho} {
		if got, err := ParseJobType(in); got != want || err != nil {
			t.Errorf("ParseJobType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, typ := range JobTypes() {
		if typ.DisplayName() == "" {
			t.Errorf("%s has no display name", typ)
		}
	}
	if got := JobInference.DisplayName(); got != "AI Inference" {
		t.Errorf("inference display name %q, want the guide's \"AI Inference\"", got)
	}
	for _, bad := range []string{"", "mining", "render "} {
		if _, err := ParseJobType(bad); !errors.Is(err, ErrUnknownJobType) {
			t.Errorf("ParseJobType(%q) err = %v, want ErrUnknownJobType", bad, err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	if got, err := ParseStatus("running"); got != StatusRunning || err != nil {
		t.Errorf("ParseStatus(running) = %q, %v; want RUNNING", got, err)
	}
	if _, err := ParseStatus("DONE"); ErrorCode(err) != CodeInvalid {
		t.Errorf("ParseStatus(DONE) code = %q, want invalid", ErrorCode(err))
	}
}

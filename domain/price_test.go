package domain

import (
	"errors"
	"testing"
)

func TestPriceTableDefaults(t *testing.T) {
	want := map[JobType]Credits{JobRender: 10, JobInference: 5, JobCPUBenchmark: 1, JobEcho: 0, JobGeneric: 1}
	for name, table := range map[string]PriceTable{"DefaultPrices": DefaultPrices(), "zero value": {}} {
		t.Run(name, func(t *testing.T) {
			for typ, w := range want {
				got, err := table.Cost(typ)
				if err != nil || got != w {
					t.Errorf("Cost(%s) = %d, %v; want %d, nil", typ, got, err, w)
				}
			}
			if got := len(table.Prices()); got != len(JobTypes()) {
				t.Errorf("len(Prices()) = %d, want %d", got, len(JobTypes()))
			}
			if _, err := table.Cost("mining"); !errors.Is(err, ErrUnknownJobType) {
				t.Errorf("Cost(mining) err = %v, want ErrUnknownJobType", err)
			}
		})
	}
}

func TestNewPriceTable(t *testing.T) {
	tests := []struct {
		name    string
		in      map[JobType]Credits
		wantErr error
	}{
		{"override", map[JobType]Credits{JobRender: 20, JobEcho: 3}, nil},
		{"ErrUnknownJobType", map[JobType]Credits{"mining": 1}, ErrUnknownJobType},
		{"ErrInvalidPrice negative", map[JobType]Credits{JobRender: -1}, ErrInvalidPrice},
		{"ErrInvalidPrice huge", map[JobType]Credits{JobRender: creditsMax + 1}, ErrInvalidPrice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := NewPriceTable(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			for typ, w := range tt.in {
				if got, _ := table.Cost(typ); got != w {
					t.Errorf("Cost(%s) = %d, want %d", typ, got, w)
				}
			}
			if got, _ := table.Cost(JobInference); got != 5 {
				t.Errorf("Cost(inference) = %d, want default 5", got)
			}
		})
	}
	t.Run("input map not shared", func(t *testing.T) {
		in := map[JobType]Credits{JobRender: 20}
		table, _ := NewPriceTable(in)
		in[JobRender] = 99
		table.Prices()[JobRender] = 98
		if got, _ := table.Cost(JobRender); got != 20 {
			t.Errorf("Cost(render) = %d after mutating maps, want 20", got)
		}
	})
}

package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
)

// TestErrorLinePrintsOnce: an SDK error, which names the program already,
// is printed with one "rendertrust: " prefix, not two.
func TestErrorLinePrintsOnce(t *testing.T) {
	apiErr := &client.APIError{Status: http.StatusBadRequest, Code: "invalid", Message: "payload_ref or payload: required for render jobs"}
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"APIError":        {creator.Explain(apiErr), "rendertrust: 400 invalid: payload_ref or payload: required for render jobs"},
		"WrappedAPIError": {creator.Explain(&client.APIError{Status: 402, Code: "insufficient_credits", Message: "insufficient credits"}), "rendertrust: 402 insufficient_credits: insufficient credits (buy credits with 'rendertrust credits buy')"},
		"PlainError":      {errors.New("--server (or $RENDERTRUST_SERVER) is required"), "rendertrust: --server (or $RENDERTRUST_SERVER) is required"},
		"WrappedPlain":    {fmt.Errorf("read payload: %w", errors.New("EOF")), "rendertrust: read payload: EOF"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := errorLine(tc.err); got != tc.want {
				t.Errorf("errorLine = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCLIGuideSteps drives the CLI as a new user would: 1. `jobs submit
// cpu_benchmark --wait` with no payload flag completes, its progress lines
// in order on one stream (Submitted, then each status, COMPLETED last);
// 2. a render without a payload is refused by the server, once; 3.
// `credits usage` ends its output with a newline, as a chart and as JSON;
// 4. `jobs types` shows the guide's cost table.
func TestCLIGuideSteps(t *testing.T) {
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("HOME", config)
	t.Setenv(creator.ServerEnv, "")
	s := startE2EServer(t, nil)
	startInProcessNode(t, s)
	cliLoginStep(t, s.base)
	mustCLI(t, "credits", "buy", "credits_100")

	out := mustCLI(t, "jobs", "submit", "cpu_benchmark", "--wait")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "Submitted job ") || !strings.Contains(lines[len(lines)-1], "COMPLETED") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("step 1: submit cpu_benchmark --wait printed\n%s\nwant Submitted first, COMPLETED last", out)
	}
	rank := map[string]int{"QUEUED": 1, "DISPATCHED": 2, "RUNNING": 3, "COMPLETED": 4}
	last := 0
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 || rank[f[1]] < last {
			t.Fatalf("step 1: progress out of order at %q in\n%s", l, out)
		}
		last = rank[f[1]]
	}

	_, err := cliRun(t, "", "jobs", "submit", "render")
	if err == nil || strings.Count(errorLine(err), "rendertrust:") != 1 || !strings.Contains(err.Error(), "required for render jobs") {
		t.Fatalf("step 2: render without payload: %v", err)
	}

	for _, args := range [][]string{{"credits", "usage"}, {"credits", "usage", "--json"}} {
		if out := mustCLI(t, args...); !strings.HasSuffix(out, "\n") {
			t.Errorf("step 3: %s output %q does not end with a newline", strings.Join(args, " "), out)
		}
	}
	if out := mustCLI(t, "jobs", "types"); !strings.Contains(out, "AI Inference") || !strings.Contains(out, "Echo (test)") {
		t.Errorf("step 4: jobs types\n%s", out)
	}
}

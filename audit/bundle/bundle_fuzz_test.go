package bundle_test

import (
	"testing"

	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/audit/bundle"
)

// FuzzVerify verifies arbitrary files offline: never a panic, never an
// error (a bad file is a failed check), and a file that does not verify
// names at least one failed check with a reason.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{`{"sha256":"00","body":{}}`, `{"sha256":"","body":null}`, `{}`, `[]`, ``,
		`{"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","body":{"entries":[{"entry":"e30="}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := bundle.Verify(ctx, file, nil, proof.Trust{})
		if err != nil {
			t.Fatalf("offline verification returned an error: %v", err)
		}
		if r.Verified {
			return
		}
		for _, c := range r.Checks {
			if c.Status == bundle.StatusFailed && c.Detail != "" {
				return
			}
		}
		t.Fatalf("%q does not verify, and no failed check says why", file)
	})
}

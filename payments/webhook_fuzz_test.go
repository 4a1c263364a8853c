package payments_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/payments"
)

// FuzzWebhookDeliver delivers arbitrary event bodies, correctly signed (so
// parsing is reached) and with an arbitrary signature header, to a webhook
// crediting a real SQLite ledger. It must never panic; a delivery that is
// not credited writes nothing, and a credited one writes one event at most.
func FuzzWebhookDeliver(f *testing.F) {
	paid, _ := json.Marshal(map[string]any{"id": "evt_1", "type": "checkout.session.completed",
		"data": map[string]any{"object": paidSession(f, "cs_1", "user-1", "p-1", "credits_100")}})
	f.Add(paid, "")
	f.Add([]byte(`{"id":"evt_2","type":"checkout.session.expired","data":{"object":{"id":"cs_2"}}}`), "")
	f.Add([]byte(`{"id":"evt_3","type":"charge.refunded"}`), "")
	f.Add([]byte(`{"type":"checkout.session.completed","data":{"object":[]}}`), "t=1,v1=00")
	f.Add([]byte(`not json`), "v1=,t=")
	e := newEnv(f, backends[0])
	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		if header == "" {
			header = sign(payload, secretCurrent, time.Now())
		}
		before := e.head(t)
		out, err := e.webhook.Deliver(ctx, payload, header)
		wrote := e.head(t) - before
		switch {
		case err == nil && out == payments.OutcomeCredited:
			if wrote > 1 {
				t.Fatalf("one credited delivery wrote %d events", wrote)
			}
		case wrote != 0:
			t.Fatalf("delivery answered %q, %v and wrote %d events", out, err, wrote)
		}
	})
}

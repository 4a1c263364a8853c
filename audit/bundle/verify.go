package bundle

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// The outcomes of a check.
const (
	StatusOK      = "ok"
	StatusFailed  = "FAILED"
	StatusSkipped = "skipped"
)

// Check is the outcome of one verification step.
type Check struct {
	Name   string `json:"name"`   // e.g. "seal", "entry 3/12", "consistency 40→96"
	Status string `json:"status"` // StatusOK, StatusFailed or StatusSkipped
	What   string `json:"what"`   // what it checks
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of Verify.
type Report struct {
	// Verified is true when no check failed. Without a chain, the anchors
	// were not checked (ChainChecked false): the proofs are consistent with
	// each other, which alone a forger could also achieve.
	Verified     bool    `json:"verified"`
	ChainChecked bool    `json:"chain_checked"`
	Subject      Subject `json:"subject"`
	Entries      int     `json:"entries"`
	Checks       []Check `json:"checks"`
}

func (r *Report) add(name string, ok bool, what, detail string) {
	c := Check{Name: name, Status: StatusOK, What: what}
	if !ok {
		c.Status, c.Detail, r.Verified = StatusFailed, detail, false
	}
	r.Checks = append(r.Checks, c)
}

// Verify checks the bundle file: its framing and seal, every entry's bytes
// and inclusion proof, that the entries are the subject's and leave no gap
// in a stream, the consistency of every anchored root with the latest, and
// with chain (nil to skip) every anchor on the chain, in the trusted
// contract (an anchor naming another chain or contract fails). Every
// failure is a failed Check naming what broke; the error is only for a
// chain that could not be asked.
func Verify(ctx context.Context, file []byte, chain proof.Chain, trust proof.Trust) (*Report, error) {
	r := &Report{Verified: true, ChainChecked: chain != nil}
	if chain != nil {
		chain = newCachedChain(chain)
	}
	body, sealHex, problem := unframe(file)
	r.add("format", problem == "", "the file is a bundle: {\"sha256\":…,\"body\":…} exactly", problem)
	if problem != "" {
		return r, nil
	}
	got := seal(body)
	r.add("seal", got == sealHex, "SHA-256 of the body is the bundle's sha256",
		fmt.Sprintf("the body hashes to %s, the bundle says %s: the file was changed after export", got, sealHex))
	b, entries, cons, problem := decodeBody(body)
	r.add("body", problem == "", "the body decodes ("+Format+", "+proof.Alg+")", problem)
	if problem != "" {
		return r, nil
	}
	r.Subject, r.Entries = b.Subject, len(entries)
	v := &verifier{r: r, chain: chain, trust: trust, body: b}
	if err := v.entries(ctx, entries); err != nil {
		return nil, err
	}
	v.subject()
	if err := v.consistency(ctx, cons); err != nil {
		return nil, err
	}
	return r, nil
}

// rawBody is Body with the proofs still raw, so that each is decoded, and
// reported, on its own.
type rawBody struct {
	Body
	Entries     []json.RawMessage `json:"entries"`
	Consistency []json.RawMessage `json:"consistency"`
}

func decodeBody(body []byte) (*Body, []json.RawMessage, []json.RawMessage, string) {
	var rb rawBody
	if err := strictDecode(body, &rb); err != nil {
		return nil, nil, nil, "the body does not decode: " + jsonProblem(err)
	}
	switch {
	case rb.Format != Format:
		return nil, nil, nil, fmt.Sprintf("format is %q, want %q", rb.Format, Format)
	case rb.Alg != proof.Alg:
		return nil, nil, nil, fmt.Sprintf("alg is %q, want %q", rb.Alg, proof.Alg)
	case len(rb.Entries) == 0:
		return nil, nil, nil, "the bundle has no entries"
	case len(rb.Entries) > EntriesMax:
		return nil, nil, nil, fmt.Sprintf("%d entries, at most %d", len(rb.Entries), EntriesMax)
	case (rb.Subject.Job == "") == (rb.Subject.User == ""):
		return nil, nil, nil, "the subject names neither or both of a job and a user"
	}
	b := rb.Body
	return &b, rb.Entries, rb.Consistency, ""
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

// verifier is one run of Verify.
type verifier struct {
	r      *Report
	chain  proof.Chain // nil: offline
	trust  proof.Trust // the contract anchors must be in, with chain
	body   *Body
	events []event // the entries decoded, in bundle order
	roots  map[uint64]proof.Hash
	anchor map[uint64]proof.Anchor
}

// event is an entry as its envelope says.
type event struct {
	rec eventstore.RecordedEvent
	e   domain.Event // nil for a type the domain does not know
	err error        // why the envelope could not be read
}

// entries checks each entry's proof and reads its envelope.
func (v *verifier) entries(ctx context.Context, raws []json.RawMessage) error {
	v.roots, v.anchor = map[uint64]proof.Hash{}, map[uint64]proof.Anchor{}
	for i, raw := range raws {
		name := fmt.Sprintf("entry %d/%d", i+1, len(raws))
		p, canonical, err := decodeInclusion(raw)
		if err != nil {
			v.r.add(name, false, "", fmt.Sprintf("entries[%d] does not decode: %s", i, jsonProblem(err)))
			v.events = append(v.events, event{err: err})
			continue
		}
		ev := readEnvelope(p)
		res, err := v.inclusion(ctx, p, ev)
		if err != nil {
			return fmt.Errorf("entry %d (position %d): %w", i+1, p.Position, err)
		}
		res.Add(checkEntryEncoding, canonical, "the entry's base64 is not the standard encoding of its bytes: a character decoding ignores was changed")
		what := fmt.Sprintf("position %d, %s: bytes, id and inclusion in the tree of size %d%s", p.Position, ev.typeName(), p.TreeSize, v.onChain())
		v.r.add(name, res.Verified, what, resultDetail(p, res))
		v.events = append(v.events, ev)
		if _, seen := v.roots[p.TreeSize]; !seen {
			v.roots[p.TreeSize], v.anchor[p.TreeSize] = p.Root, p.Anchor
		} else if v.roots[p.TreeSize] != p.Root || v.anchor[p.TreeSize] != p.Anchor {
			v.r.add(name+" anchor", false, "entries at one tree size name one root and anchor",
				fmt.Sprintf("position %d names root %s for size %d, an earlier entry names %s", p.Position, p.Root, p.TreeSize, v.roots[p.TreeSize]))
		}
	}
	return nil
}

// decodeInclusion decodes an entry's proof strictly, and reports whether
// its "entry" is the standard base64 of its bytes, so that no character of
// it can change unnoticed (decoding ignores the last character's unused
// bits).
func decodeInclusion(raw json.RawMessage) (*proof.Inclusion, bool, error) {
	var ri struct {
		proof.Inclusion
		Entry string `json:"entry"` // shadows Inclusion.Entry
	}
	if err := strictDecode(raw, &ri); err != nil {
		return nil, false, err
	}
	p := ri.Inclusion
	b, err := base64.StdEncoding.DecodeString(ri.Entry)
	if err != nil {
		return nil, false, fmt.Errorf("entry: %w", err)
	}
	p.Entry = b
	return &p, base64.StdEncoding.EncodeToString(b) == ri.Entry, nil
}

func (v *verifier) onChain() string {
	if v.chain == nil {
		return " (anchor not checked on chain: no RPC endpoint)"
	}
	return ", anchor on chain"
}

// inclusion checks p: completely against the chain, or offline its
// Merkle part only.
func (v *verifier) inclusion(ctx context.Context, p *proof.Inclusion, env event) (*proof.Result, error) {
	if v.chain != nil {
		return proof.VerifyInclusion(ctx, v.chain, v.trust, p)
	}
	r := &proof.Result{Verified: true, Checks: map[string]bool{}}
	r.Add(proof.CheckAlg, p.Alg == proof.Alg, fmt.Sprintf("alg is %q", p.Alg))
	leaf := merkle.HashLeaf(p.Entry)
	r.Add(proof.CheckLeafHash, leaf == p.LeafHash, fmt.Sprintf("SHA-256(0x00 ‖ entry) is %x, leaf_hash is %s", leaf, p.LeafHash))
	r.Add(proof.CheckEntryID, env.err == nil && env.rec.ID == p.EntryID, idDetail(env, p.EntryID))
	r.Add(proof.CheckLeafIndex, p.Position >= 1 && p.LeafIndex == p.Position-1 && p.LeafIndex < p.TreeSize,
		fmt.Sprintf("position %d, leaf_index %d, tree_size %d", p.Position, p.LeafIndex, p.TreeSize))
	err := merkle.VerifyInclusion(leaf, p.LeafIndex, p.TreeSize, hashes(p.AuditPath), p.Root)
	r.AddErr(proof.CheckInclusion, err)
	return r, nil
}

// resultDetail says which checks of res failed and why.
func resultDetail(p *proof.Inclusion, res *proof.Result) string {
	var parts []string
	for _, name := range res.Failed() {
		parts = append(parts, name+": "+res.Details[name])
	}
	return fmt.Sprintf("entry %s at position %d: %s", p.EntryID, p.Position, strings.Join(parts, "; "))
}

// subject checks that every entry belongs to the subject and its window,
// in position order, and that the subject's stream has no gap.
func (v *verifier) subject() {
	s := v.body.Subject
	var problems []string
	var last uint64
	versions := map[string][]uint64{}
	for i, ev := range v.events {
		if ev.err != nil {
			problems = append(problems, fmt.Sprintf("entry %d: unreadable envelope: %v", i+1, ev.err))
			continue
		}
		if ev.rec.Position <= last {
			problems = append(problems, fmt.Sprintf("entry %d: position %d is not after %d", i+1, ev.rec.Position, last))
		}
		last = ev.rec.Position
		if why := s.outside(ev); why != "" {
			problems = append(problems, fmt.Sprintf("entry %d (position %d, %s in %s): %s", i+1, ev.rec.Position, ev.rec.Type, ev.rec.Stream, why))
		}
		versions[ev.rec.Stream] = append(versions[ev.rec.Stream], ev.rec.Version)
	}
	v.r.add("subject", len(problems) == 0, "every entry is "+s.describe()+", in position order", strings.Join(problems, "; "))
	stream, first := s.completeStream()
	gap := gapIn(versions[stream], first)
	v.r.add("completeness", gap == "", fmt.Sprintf("the entries of %s run without a gap%s", stream, fromFirst(first)), gap)
}

// outside says why ev is not the subject's, "" if it is.
func (s Subject) outside(ev event) string {
	if ev.rec.Stream == domain.AccountStream(domain.UserID(s.User)) && s.User != "" {
		return s.windowText(ev)
	}
	if s.Job != "" {
		switch {
		case ev.rec.Stream == domain.JobStream(domain.JobID(s.Job)):
			if sub, ok := ev.e.(domain.JobSubmitted); ok && string(sub.Owner) != s.Owner {
				return fmt.Sprintf("the job's owner is %s, the subject says %s", sub.Owner, s.Owner)
			}
			return s.windowText(ev)
		case ev.rec.Stream == domain.AccountStream(domain.UserID(s.Owner)) && aboutJob(ev.e, domain.JobID(s.Job)):
			return s.windowText(ev)
		}
	}
	return "not an event of " + s.describe()
}

func (s Subject) windowText(ev event) string {
	if s.Window.contains(ev.rec.Position, ev.rec.RecordedAt) {
		return ""
	}
	return "outside the window"
}

func (s Subject) describe() string {
	if s.Job != "" {
		return fmt.Sprintf("of job %s or its money in account-%s", s.Job, s.Owner)
	}
	return "of account-" + s.User
}

// completeStream returns the stream whose versions the bundle holds
// without a gap, and the version it must start at (0: any).
func (s Subject) completeStream() (string, uint64) {
	first := uint64(0)
	if s.Window == nil || (s.Window.FromPosition == 0 && s.Window.FromTime.IsZero()) {
		first = 1
	}
	if s.Job != "" {
		return domain.JobStream(domain.JobID(s.Job)), first
	}
	return domain.AccountStream(domain.UserID(s.User)), first
}

func gapIn(versions []uint64, first uint64) string {
	if len(versions) == 0 {
		return "the bundle holds none of them"
	}
	if first != 0 && versions[0] != first {
		return fmt.Sprintf("the first entry is version %d, not %d: earlier entries are missing", versions[0], first)
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] != versions[i-1]+1 {
			return fmt.Sprintf("version %d follows version %d: entries in between are missing", versions[i], versions[i-1])
		}
	}
	return ""
}

func fromFirst(first uint64) string {
	if first == 1 {
		return ", from the stream's first event"
	}
	return ""
}

// consistency checks that every root the entries use is the latest
// anchored root or consistent with it.
func (v *verifier) consistency(ctx context.Context, raws []json.RawMessage) error {
	latest := v.body.Latest
	byFrom := map[uint64]*proof.Consistency{}
	for i, raw := range raws {
		var c proof.Consistency
		if err := strictDecode(raw, &c); err != nil {
			v.r.add(fmt.Sprintf("consistency %d/%d", i+1, len(raws)), false, "", fmt.Sprintf("consistency[%d] does not decode: %s", i, jsonProblem(err)))
			continue
		}
		byFrom[c.TreeSize1] = &c
	}
	for _, size := range slices.Sorted(maps.Keys(v.roots)) {
		if err := v.connect(ctx, size, byFrom[size]); err != nil {
			return err
		}
		delete(byFrom, size)
	}
	for size := range byFrom {
		v.r.add(fmt.Sprintf("consistency %d→%d", size, latest.TreeSize), false, "every consistency proof starts at a size an entry uses",
			fmt.Sprintf("no entry uses tree size %d", size))
	}
	return v.latestOnChain(ctx)
}

// connect checks that the root at size, which entries use, is the latest
// anchored root or is joined to it by c.
func (v *verifier) connect(ctx context.Context, size uint64, c *proof.Consistency) error {
	latest := v.body.Latest
	name := fmt.Sprintf("consistency %d→%d", size, latest.TreeSize)
	what := fmt.Sprintf("the tree of size %d, which entries use, is a prefix of the latest anchored tree (size %d)%s", size, latest.TreeSize, v.onChain())
	if size == latest.TreeSize {
		ok := v.roots[size] == latest.Root && v.anchor[size] == latest.Anchor
		v.r.add(fmt.Sprintf("anchor %d (latest)", size), ok, "the entries proven at the latest anchored size name its root and anchor",
			fmt.Sprintf("entries name root %s, the latest anchor is %s", v.roots[size], latest.Root))
		return nil
	}
	if c == nil {
		v.r.add(name, false, what, fmt.Sprintf("the bundle has no consistency proof from size %d", size))
		return nil
	}
	var problems []string
	if c.Root1 != v.roots[size] || c.Anchor1 != v.anchor[size] {
		problems = append(problems, fmt.Sprintf("it starts from root %s, the entries name %s", c.Root1, v.roots[size]))
	}
	if c.TreeSize2 != latest.TreeSize || c.Root2 != latest.Root || c.Anchor2 != latest.Anchor {
		problems = append(problems, fmt.Sprintf("it ends at size %d, root %s, not at the latest anchor (size %d, root %s)", c.TreeSize2, c.Root2, latest.TreeSize, latest.Root))
	}
	res, err := v.consistencyResult(ctx, c)
	if err != nil {
		return fmt.Errorf("consistency from %d to %d: %w", size, c.TreeSize2, err)
	}
	for _, f := range res.Failed() {
		problems = append(problems, f+": "+res.Details[f])
	}
	v.r.add(name, len(problems) == 0, what, strings.Join(problems, "; "))
	return nil
}

func (v *verifier) consistencyResult(ctx context.Context, c *proof.Consistency) (*proof.Result, error) {
	if v.chain != nil {
		return proof.VerifyConsistency(ctx, v.chain, v.trust, c)
	}
	r := &proof.Result{Verified: true, Checks: map[string]bool{}}
	r.Add(proof.CheckAlg, c.Alg == proof.Alg, fmt.Sprintf("alg is %q", c.Alg))
	err := merkle.VerifyConsistency(c.TreeSize1, c.TreeSize2, hashes(c.ConsistencyPath), c.Root1, c.Root2)
	r.AddErr(proof.CheckConsistency, err)
	return r, nil
}

// latestOnChain checks the latest anchor itself on the chain, or says
// that it was not.
func (v *verifier) latestOnChain(ctx context.Context) error {
	latest := v.body.Latest
	name := fmt.Sprintf("latest anchor %d", latest.TreeSize)
	if v.chain == nil {
		v.r.Checks = append(v.r.Checks, Check{Name: name, Status: StatusSkipped,
			What: "the latest anchor's root is on the chain", Detail: "no RPC endpoint: pass --rpc to check the anchors"})
		return nil
	}
	trivial := &proof.Consistency{Alg: proof.Alg, TreeSize1: latest.TreeSize, TreeSize2: latest.TreeSize, Root1: latest.Root,
		Root2: latest.Root, ConsistencyPath: []proof.Hash{}, Anchor1: latest.Anchor, Anchor2: latest.Anchor}
	res, err := proof.VerifyConsistency(ctx, v.chain, v.trust, trivial)
	if err != nil {
		return fmt.Errorf("latest anchor: %w", err)
	}
	var problems []string
	for _, f := range res.Failed() {
		problems = append(problems, f+": "+res.Details[f])
	}
	v.r.add(name, res.Verified, fmt.Sprintf("the chain holds root %s for size %d, in the named transaction and block", latest.Root, latest.TreeSize), strings.Join(problems, "; "))
	return nil
}

// checkEntryEncoding names the entry check that its base64 is canonical.
const checkEntryEncoding = "entry_encoding"

// readEnvelope reads the fields of an entry's canonical envelope.
func readEnvelope(p *proof.Inclusion) event {
	var env struct {
		Data          json.RawMessage `json:"data"`
		ID            string          `json:"id"`
		RecordedAt    string          `json:"recorded_at"`
		SchemaVersion int             `json:"schema_version"`
		Stream        string          `json:"stream"`
		Type          string          `json:"type"`
		Version       uint64          `json:"version"`
	}
	if err := json.Unmarshal(p.Entry, &env); err != nil {
		return event{err: fmt.Errorf("entry is not a JSON envelope: %w", err)}
	}
	at, err := time.Parse(eventstore.RecordedAtLayout, env.RecordedAt)
	if err != nil {
		return event{err: fmt.Errorf("entry's recorded_at: %w", err)}
	}
	rec := eventstore.RecordedEvent{ID: env.ID, Stream: env.Stream, Version: env.Version, Position: p.Position,
		Type: env.Type, SchemaVersion: env.SchemaVersion, RecordedAt: at, Data: env.Data}
	e, err := replay.Decode(rec)
	return event{rec: rec, e: e, err: err}
}

// typeName returns the entry's event type, for people.
func (ev event) typeName() string {
	if ev.rec.Type == "" {
		return "unreadable entry"
	}
	return ev.rec.Type
}

func idDetail(ev event, want string) string {
	if ev.err != nil && ev.rec.ID == "" {
		return ev.err.Error()
	}
	return fmt.Sprintf("entry's id is %q, proof is for %q", ev.rec.ID, want)
}

func hashes(path []proof.Hash) [][merkle.HashSize]byte {
	out := make([][merkle.HashSize]byte, len(path))
	for i, h := range path {
		out[i] = h
	}
	return out
}

// Write prints one line per check, then the verdict. It returns w's
// error.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-7s %-22s %s", c.Status, c.Name, c.What)
		if c.Detail != "" {
			fmt.Fprintf(&b, "\n        %s", c.Detail)
		}
		b.WriteByte('\n')
	}
	failed := 0
	for _, c := range r.Checks {
		if c.Status == StatusFailed {
			failed++
		}
	}
	switch {
	case failed > 0:
		fmt.Fprintf(&b, "NOT verified: %d of %d checks failed\n", failed, len(r.Checks))
	case !r.ChainChecked:
		fmt.Fprintf(&b, "verified offline: the %d entries and their proofs agree with each other; the anchors were NOT checked on a chain (pass --rpc)\n", r.Entries)
	default:
		fmt.Fprintf(&b, "verified: the %d entries are in the log anchored on chain, and the log was only appended to up to the latest anchor\n", r.Entries)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

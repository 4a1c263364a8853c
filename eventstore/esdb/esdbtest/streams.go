package esdbtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	streamsapi "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	// subscriptionBatchMax bounds the records a subscription takes from the
	// log at once.
	subscriptionBatchMax = 512
	// appendEventsMax bounds the proposed messages of one append.
	appendEventsMax = 100_000
)

// The metadata keys and values of EventStoreDB's protocol.
const (
	metaType        = "type"
	metaContentType = "content-type"
	metaCreated     = "created"
	contentTypeJSON = "application/json"
)

// streams implements the Streams service: Append and Read. Delete, Tombstone
// and BatchAppend answer Unimplemented.
type streams struct {
	streamsapi.UnimplementedStreamsServer
	log      *eventLog
	stopping <-chan struct{}
}

// Append takes the options message, then the proposed events, and writes
// them atomically once the client closes its side: a call that ends early
// writes nothing.
func (s *streams) Append(srv streamsapi.Streams_AppendServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first append message must carry options")
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return status.Error(codes.InvalidArgument, "empty stream name")
	}
	exp := expectationFromProto(opts)
	events, err := receiveProposed(srv)
	if err != nil {
		return err
	}
	out := s.log.append(stream, exp, events, time.Now())
	return srv.SendAndClose(appendResponse(out, exp))
}

func expectationFromProto(o *streamsapi.AppendReq_Options) expectation {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streamsapi.AppendReq_Options_Revision:
		return expectation{kind: expectRevision, revision: v.Revision}
	case *streamsapi.AppendReq_Options_NoStream:
		return expectation{kind: expectNoStream}
	case *streamsapi.AppendReq_Options_StreamExists:
		return expectation{kind: expectStreamExists}
	}
	return expectation{kind: expectAny}
}

// receiveProposed reads the proposed events until the client closes its
// side, checking what EventStoreDB checks: the required metadata and the
// append's total size.
func receiveProposed(srv streamsapi.Streams_AppendServer) ([]*record, error) {
	var events []*record
	size := 0
	for {
		msg, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			return events, nil
		}
		if err != nil {
			return nil, err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return nil, status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		eventType, okType := pm.GetMetadata()[metaType]
		contentType, okContent := pm.GetMetadata()[metaContentType]
		if !okType || !okContent {
			return nil, rpcError(srv, codes.InvalidArgument, "Required Metadata Property is missing",
				"exception", "missing-required-metadata-property", "required-metadata-properties", metaType+","+metaContentType)
		}
		id, err := uuidFromProto(pm.GetId())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "event id: %v", err)
		}
		size += len(eventType) + len(pm.GetData()) + len(pm.GetCustomMetadata())
		if size > MaxAppendSizeBytes || len(events) >= appendEventsMax {
			return nil, rpcError(srv, codes.InvalidArgument, fmt.Sprintf("Maximum Append Size of %d Exceeded.", MaxAppendSizeBytes),
				"exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(MaxAppendSizeBytes))
		}
		events = append(events, &record{id: id, eventType: eventType, contentType: contentType,
			data: pm.GetData(), meta: pm.GetCustomMetadata()})
	}
}

// rpcError returns a status error and sets the trailers EventStoreDB sends
// with it (the client reads "exception" from them).
func rpcError(stream grpc.ServerStream, code codes.Code, msg string, trailer ...string) error {
	stream.SetTrailer(metadata.Pairs(trailer...))
	return status.Error(code, msg)
}

// appendResponse renders an outcome as EventStoreDB does, filling both the
// current and the pre-20.6 wrong-expected-version fields.
func appendResponse(out appendOutcome, exp expectation) *streamsapi.AppendResp {
	if out.ok {
		success := &streamsapi.AppendResp_Success{
			PositionOption: &streamsapi.AppendResp_Success_Position{Position: &streamsapi.AppendResp_Position{
				CommitPosition: out.position, PreparePosition: out.position}},
		}
		if out.current < 0 {
			success.CurrentRevisionOption = &streamsapi.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
			success.PositionOption = &streamsapi.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
		} else {
			success.CurrentRevisionOption = &streamsapi.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(out.current)}
		}
		return &streamsapi.AppendResp{Result: &streamsapi.AppendResp_Success_{Success: success}}
	}
	wrong := &streamsapi.AppendResp_WrongExpectedVersion{}
	if out.current < 0 {
		wrong.CurrentRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		wrong.CurrentRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		wrong.CurrentRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(out.current)}
		wrong.CurrentRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(out.current)}
	}
	switch exp.kind {
	case expectAny:
		wrong.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		wrong.ExpectedRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	case expectStreamExists:
		wrong.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		wrong.ExpectedRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	case expectNoStream:
		wrong.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	default:
		wrong.ExpectedRevisionOption = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: exp.revision}
		wrong.ExpectedRevisionOption_20_6_0 = &streamsapi.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: exp.revision}
	}
	return &streamsapi.AppendResp{Result: &streamsapi.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrong}}
}

// Read serves a bounded read (count) or a catch-up subscription, of one
// stream or of $all.
func (s *streams) Read(req *streamsapi.ReadReq, srv streamsapi.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read without options")
	}
	f, err := newFilter(o.GetFilter())
	if err != nil {
		return err
	}
	w := &eventWriter{srv: srv, structured: o.GetUuidOption().GetString_() == nil}
	if o.GetSubscription() != nil {
		return s.subscribe(o, f, w)
	}
	backwards := o.GetReadDirection() == streamsapi.ReadReq_Options_Backwards
	if all := o.GetAll(); all != nil {
		return w.sendAll(readAll(s.log.snapshot(), all, backwards), f, o.GetCount())
	}
	stream := o.GetStream()
	name := stream.GetStreamIdentifier().GetStreamName()
	recs := s.log.stream(string(name))
	if len(recs) == 0 {
		return srv.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_StreamNotFound_{
			StreamNotFound: &streamsapi.ReadResp_StreamNotFound{StreamIdentifier: &shared.StreamIdentifier{StreamName: name}}}})
	}
	return w.sendAll(readStream(recs, stream, backwards), f, o.GetCount())
}

// readAll returns the records of $all a read visits, in its order: forwards
// from a position inclusive, backwards from a position exclusive.
func readAll(all []*record, o *streamsapi.ReadReq_Options_AllOptions, backwards bool) []*record {
	switch {
	case o.GetStart() != nil:
		if backwards {
			return nil
		}
		return all
	case o.GetEnd() != nil:
		if backwards {
			return reversed(all)
		}
		return nil
	}
	p := o.GetPosition()
	i := firstAtOrAfter(all, p.GetCommitPosition(), p.GetPreparePosition())
	if backwards {
		return reversed(all[:i])
	}
	return all[i:]
}

// readStream returns the records of a stream a read visits: forwards from a
// revision, backwards down from one, both inclusive.
func readStream(recs []*record, o *streamsapi.ReadReq_Options_StreamOptions, backwards bool) []*record {
	from := uint64(0)
	switch {
	case o.GetEnd() != nil:
		from = uint64(len(recs))
		if backwards {
			from = uint64(len(recs)) - 1
		}
	case o.GetStart() == nil:
		from = o.GetRevision()
	}
	if backwards {
		return reversed(recs[:min(from+1, uint64(len(recs)))])
	}
	return recs[min(from, uint64(len(recs))):]
}

func reversed(recs []*record) []*record {
	out := make([]*record, len(recs))
	for i, r := range recs {
		out[len(recs)-1-i] = r
	}
	return out
}

// subscribe confirms the subscription, sends the stored events after its
// start (exclusive, as EventStoreDB does), a caught-up message, then every
// new event as it is written, until the client or the server hangs up.
func (s *streams) subscribe(o *streamsapi.ReadReq_Options, f *filter, w *eventWriter) error {
	stream, cursor := s.subscriptionStart(o)
	confirm := &streamsapi.ReadResp{Content: &streamsapi.ReadResp_Confirmation{
		Confirmation: &streamsapi.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}
	if err := w.srv.Send(confirm); err != nil {
		return err
	}
	caughtUp := false
	for {
		batch, changed := s.log.after(stream, cursor, subscriptionBatchMax)
		if len(batch) == 0 {
			if !caughtUp {
				caughtUp = true
				if err := w.srv.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_CaughtUp_{CaughtUp: &streamsapi.ReadResp_CaughtUp{}}}); err != nil {
					return err
				}
			}
			select {
			case <-changed:
			case <-w.srv.Context().Done():
				return status.FromContextError(w.srv.Context().Err()).Err()
			case <-s.stopping:
				return status.Error(codes.Unavailable, "server is shutting down")
			}
			continue
		}
		cursor += len(batch)
		if err := w.sendLive(batch, f); err != nil {
			return err
		}
	}
}

// subscriptionStart returns the stream ("" for $all) and the index in it of
// the first record the subscription delivers.
func (s *streams) subscriptionStart(o *streamsapi.ReadReq_Options) (string, int) {
	if all := o.GetAll(); all != nil {
		switch {
		case all.GetStart() != nil:
			return "", 0
		case all.GetEnd() != nil:
			return "", s.log.length("")
		}
		p := all.GetPosition()
		snap := s.log.snapshot()
		i := firstAtOrAfter(snap, p.GetCommitPosition(), p.GetPreparePosition())
		if i < len(snap) && snap[i].commit == p.GetCommitPosition() && snap[i].prepare == p.GetPreparePosition() {
			i++
		}
		return "", i
	}
	so := o.GetStream()
	name := string(so.GetStreamIdentifier().GetStreamName())
	switch {
	case so.GetStart() != nil:
		return name, 0
	case so.GetEnd() != nil:
		return name, s.log.length(name)
	}
	return name, int(min(so.GetRevision()+1, uint64(s.log.length(name))))
}

// filter selects events by stream name or event type, by prefixes or a
// regular expression, as ReadReq.Options.FilterOptions says.
type filter struct {
	onType   bool
	prefixes []string
	re       *regexp.Regexp
	// checkpointEvery is how many scanned events a filtered subscription
	// sends a checkpoint after: the search window times the multiplier.
	checkpointEvery int
}

// newFilter returns nil (everything passes) when o is nil.
func newFilter(o *streamsapi.ReadReq_Options_FilterOptions) (*filter, error) {
	if o == nil {
		return nil, nil
	}
	expr := o.GetStreamIdentifier()
	f := &filter{}
	if o.GetEventType() != nil {
		f.onType, expr = true, o.GetEventType()
	}
	f.prefixes = expr.GetPrefix()
	if re := expr.GetRegex(); re != "" {
		compiled, err := regexp.Compile(re)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
		}
		f.re = compiled
	}
	window := max(int(o.GetMax()), 32) // 32: the client's default search window
	f.checkpointEvery = window * max(int(o.GetCheckpointIntervalMultiplier()), 1)
	return f, nil
}

func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	s := r.stream
	if f.onType {
		s = r.eventType
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// eventWriter sends records as ReadResp messages.
type eventWriter struct {
	srv        streamsapi.Streams_ReadServer
	structured bool // event ids as two int64s rather than strings
	scanned    int  // records a filtered subscription passed over since its last checkpoint
}

// sendAll sends up to count records that pass f.
func (w *eventWriter) sendAll(recs []*record, f *filter, count uint64) error {
	sent := uint64(0)
	for _, r := range recs {
		if sent >= count {
			return nil
		}
		if !f.match(r) {
			continue
		}
		if err := w.send(r); err != nil {
			return err
		}
		sent++
	}
	return nil
}

// sendLive sends the records of a subscription that pass f, with a
// checkpoint after every f.checkpointEvery records scanned.
func (w *eventWriter) sendLive(recs []*record, f *filter) error {
	for _, r := range recs {
		if f.match(r) {
			if err := w.send(r); err != nil {
				return err
			}
		}
		if f == nil {
			continue
		}
		if w.scanned++; w.scanned >= f.checkpointEvery {
			w.scanned = 0
			cp := &streamsapi.ReadResp{Content: &streamsapi.ReadResp_Checkpoint_{Checkpoint: &streamsapi.ReadResp_Checkpoint{
				CommitPosition: r.commit, PreparePosition: r.prepare}}}
			if err := w.srv.Send(cp); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *eventWriter) send(r *record) error {
	return w.srv.Send(&streamsapi.ReadResp{Content: &streamsapi.ReadResp_Event{Event: &streamsapi.ReadResp_ReadEvent{
		Event: &streamsapi.ReadResp_ReadEvent_RecordedEvent{
			Id:               uuidToProto(r.id, w.structured),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.prepare,
			CommitPosition:   r.commit,
			Metadata: map[string]string{
				metaType:        r.eventType,
				metaContentType: r.contentType,
				metaCreated:     strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &streamsapi.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.commit},
	}}})
}

func uuidToProto(id uuid.UUID, structured bool) *shared.UUID {
	if !structured {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func uuidFromProto(p *shared.UUID) (uuid.UUID, error) {
	if s := p.GetStructured(); s != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(s.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(s.GetLeastSignificantBits()))
		return id, nil
	}
	return uuid.Parse(p.GetString_())
}

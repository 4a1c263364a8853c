package eventstore

import "time"

// PrepareAppend validates an append's input exactly as the Committer does
// and returns its events with canonical data. It is for backends that do not
// write through a Committer (eventstore/esdb), so every backend refuses the
// same input. Errors: *InvalidError.
func PrepareAppend(stream string, expected ExpectedVersion, events []EventData) ([]EventData, error) {
	return prepareAppend(stream, expected, events)
}

// EncodeEnvelope returns the canonical bytes of e stored as version version
// of stream, recorded at at: the frozen encoding that is stored verbatim and
// hashed with LeafHash. e.Data must be canonical (PrepareAppend makes it so).
// The caller enforces EventBytesMax on the result.
func EncodeEnvelope(stream string, version uint64, e EventData, at time.Time) []byte {
	return encodeEnvelope(stream, version, e, at)
}

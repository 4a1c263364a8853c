// Package domain holds RenderTrust's business rules: the account, job and node
// aggregates, the events they decide, the double-entry postings that move
// credits, prices, credit packages and the stable error codes.
//
// The package speaks no I/O. It imports only the standard library, never reads
// the clock (time arrives as a now argument) and never generates ids (callers
// pass them in). A command handler loads an aggregate by replaying its stream
// into a new one (NewAccount, NewJob, NewNode, then Apply for each event), asks
// it to decide, and appends the events it returned with the aggregate's Version
// as the expected version. Apply is pure and cannot fail; deciding methods
// validate everything first. AccountOf, JobIDOf, PostingsOf, SettlementOf and
// OccurredAt read what an event names without a type switch at every reader.
//
// Timestamps in events are UTC truncated to microseconds, the precision of the
// event log, so that an event decoded from the log equals the one decided.
package domain

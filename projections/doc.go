// Package projections folds the event log into the query tables behind the
// REST API (CQRS read models): jobs, balances, transactions, usage and nodes.
//
// # Runner, checkpoints, exactly once
//
// A Runner follows the log for a set of projections. It reads the log once,
// from the lowest checkpoint, and applies each batch of events (at most
// BatchEventsMax) to every projection in one transaction that also moves each
// projection's row in projection_checkpoints(name, generation, position,
// updated_at). A batch is committed whole or not at all, so a crash, a
// cancelled context or a failing Apply never applies an event twice or skips
// one. Each transaction starts by reading (on PostgreSQL: locking) the
// checkpoint rows, and applies to a projection only the events after its own
// checkpoint, in the tables of the generation that row names; the final
// UPDATE … WHERE generation = ? is a guard that fails the batch if the
// generation moved anyway. So any number of runners and rebuilds, in any
// number of processes, can share one database.
//
// After catching up (reading ahead in parallel), the runner follows the log
// through eventstore.Store.Subscribe, which wakes on commit: no sleep loop.
// Events whose type (or schema version) the domain does not know are skipped
// visibly: rendertrust_projection_skipped_events_total{projection,type} and a
// warning, the first time per type and runner. An event of a known type that
// does not decode is corruption: the batch fails, is logged and retried with
// backoff, and the projection stops advancing (its lag grows) until it is
// fixed.
//
// # Generations, views and rebuilds
//
// A projection's tables are generation-suffixed (rm_jobs_g3) and read through
// a view with the plain name (rm_jobs). Rebuild replays the log into the next
// generation while the old one keeps serving, catches up to the head, then in
// one transaction applies the last events, repoints the views and moves the
// checkpoint to the new generation; old generations are dropped afterwards.
// A live runner notices the new generation in its next transaction. Every
// generation records a fingerprint of the table definitions it was built
// with; a runner that finds a projection built from other definitions (the
// code changed) rebuilds it in the background and keeps it out of WaitFor
// until the rebuild has swapped in. ReadStatus says where each projection
// stands; Rebuild reports its progress through RebuildOptions.Progress. The
// package prints nothing: the command draws the status table and the bar.
//
// # Read-your-writes
//
// Runner.WaitFor(ctx, position) returns once every projection has applied
// the log up to position (woken by the runner's commits, not by polling),
// bounded by the context and WaitMax.
//
// # Decisions recorded here
//
//   - Usage is consumption: the credits deducted for completed jobs, bucketed
//     by the local date of the deduction. Refunds are not subtracted: a refund
//     is a credit movement of its own (it shows in the transaction history),
//     and subtracting it would rewrite a past day's bar days later.
//   - Zero-credit holds, deductions and releases (the free echo jobs) carry
//     no postings and move nothing; they are left out of the transaction
//     history and of usage.
//   - Transaction amounts are positive; the type says which way the credits
//     went (purchase, grant, refund, release add to available credits; hold
//     and deduction take from them).
//   - Job timestamps record the latest occurrence of each transition (a
//     retried job shows its last dispatch); failed_at is set only when the job
//     finally failed, and last_error keeps the latest failure.
//   - A job list is ordered newest first by (submitted_at, job_id), and its
//     cursor is that pair: keyset pagination never repeats or skips a job that
//     existed when the first page was read, however many jobs are added.
//     Transactions are ordered by log position, so their cursor is the
//     position.
package projections

package http

import (
	"context"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/identity"
	"github.com/rendertrust/rendertrust/projections"
)

// The services the handlers call, each declared here by the methods the
// handlers use (as WTF Dial's server holds its services).
// *commands.Service, *identity.Service, *dispatch.Registry and
// *projections.Reader implement them; tests may pass anything smaller.

// JobService runs the job commands: a creator's submissions and cancels,
// and a node's reports.
type JobService interface {
	SubmitJob(ctx context.Context, a commands.Actor, cmd commands.SubmitJob) (commands.Submitted, error)
	CancelJob(ctx context.Context, a commands.Actor, owner domain.UserID, id domain.JobID) (uint64, error)
	StartJob(ctx context.Context, a commands.Actor, node domain.NodeID, id domain.JobID) (uint64, error)
	CompleteJobInput(ctx context.Context, a commands.Actor, node domain.NodeID, id domain.JobID, sha256Hex string, size int64, inputSHA256 string) (uint64, error)
	FailJob(ctx context.Context, a commands.Actor, node domain.NodeID, id domain.JobID, message string) (uint64, error)
	// Job returns the job as the write side sees it.
	Job(ctx context.Context, id domain.JobID) (*domain.Job, error)
	// Heartbeat records that a node is alive.
	Heartbeat(ctx context.Context, id domain.NodeID) error
	// Prices returns the price table jobs are charged by.
	Prices() domain.PriceTable
}

// CreditService runs the admin's credit commands. An empty grant or refund
// id is derived from the actor's idempotency key.
type CreditService interface {
	Grant(ctx context.Context, a commands.Actor, user domain.UserID, grantID string, amount domain.Credits, reason string) (uint64, error)
	Refund(ctx context.Context, a commands.Actor, job domain.JobID, amount domain.Credits, refundID, reason string) (uint64, error)
}

// UserService keeps users, their logins and refresh tokens.
type UserService interface {
	Register(ctx context.Context, email, name, password, role string) (identity.User, error)
	Authenticate(ctx context.Context, email, password string) (identity.User, error)
	User(ctx context.Context, id domain.UserID) (identity.User, error)
	Users(ctx context.Context, after domain.UserID, limit int) ([]identity.User, error)
	IssueRefreshToken(ctx context.Context, user domain.UserID) (string, error)
	RotateRefreshToken(ctx context.Context, token string) (domain.UserID, string, error)
	RevokeRefreshToken(ctx context.Context, token string) error
	// BeginLogin admits a login attempt under the login limits (shared by
	// every process) or refuses it with identity.ErrLoginRateLimited.
	BeginLogin(ctx context.Context, account, address string) (finish func(context.Context, identity.LoginOutcome), err error)
}

// NodeService keeps node enrollment tokens and credentials, and retires
// nodes.
type NodeService interface {
	IssueEnrollmentToken(ctx context.Context, admin string) (string, time.Time, error)
	EnrollWithToken(ctx context.Context, token string, e domain.Enrollment) (domain.NodeID, string, error)
	RotateNodeCredential(ctx context.Context, id domain.NodeID) (string, error)
	AuthenticateNode(ctx context.Context, credential string) (domain.NodeID, error)
	RetireNode(ctx context.Context, a commands.Actor, id domain.NodeID, reason string) (uint64, error)
}

// Assignments is the dispatcher's view the node endpoints read: which jobs
// wait for a node, when that changes, and when each node was last heard.
type Assignments interface {
	Assigned(node domain.NodeID) []domain.JobID
	Changed() <-chan struct{}
	projections.NodeHeartbeats
}

// ReadModels answers the API's queries from the projections.
type ReadModels interface {
	Balance(ctx context.Context, user domain.UserID) (projections.Balance, error)
	Transactions(ctx context.Context, user domain.UserID, q projections.TransactionQuery) (projections.TransactionPage, error)
	Usage(ctx context.Context, user domain.UserID, q projections.UsageQuery) (projections.Usage, error)
	Jobs(ctx context.Context, owner domain.UserID, q projections.JobQuery) (projections.JobPage, error)
	Job(ctx context.Context, owner domain.UserID, id domain.JobID) (projections.Job, error)
	Nodes(ctx context.Context, hb projections.NodeHeartbeats, now time.Time) ([]projections.Node, error)
}

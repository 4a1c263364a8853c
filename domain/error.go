package domain

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes are only ever added,
// never renamed or removed: clients and the HTTP status table depend on them.
type Code string

// The application error codes. Anything that is not an application error has
// CodeInternal, and its details never reach a client.
const (
	CodeInvalid             Code = "invalid"
	CodeNotFound            Code = "not_found"
	CodeConflict            Code = "conflict"
	CodeInsufficientCredits Code = "insufficient_credits"
	CodeNoHealthyNodes      Code = "no_healthy_nodes"
	CodeUnauthorized        Code = "unauthorized"
	CodeForbidden           Code = "forbidden"
	CodeTooLarge            Code = "too_large"
	CodeRateLimited         Code = "rate_limited"
	CodeUnavailable         Code = "unavailable"
	CodeNotAnchored         Code = "not_anchored" // in the audit log, no confirmed anchor covers it yet
	CodeInternal            Code = "internal"
	// CodeInvalidSignature: a webhook delivery whose signature does not
	// verify (it is not from the payment provider).
	CodeInvalidSignature Code = "invalid_signature"
)

// Error is an application error: a stable Code and a message that is safe to
// show to the client. Sentinels below are *Error values; wrap them with %w to
// add context and errors.Is still matches the sentinel.
type Error struct {
	Code    Code
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Errorf returns a new *Error with the given code and a formatted message.
// Other packages use it for application errors the domain does not name.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a nil
// err, and CodeInternal for any error that is not an application error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the text a client may see: err.Error() (including
// wrapped context) for application errors, "internal error" for anything else,
// and "" for a nil err.
func ErrorMessage(err error) string {
	switch ErrorCode(err) {
	case "":
		return ""
	case CodeInternal:
		return "internal error"
	default:
		return err.Error()
	}
}

// Sentinel errors. Deciding methods return them wrapped with context; check
// them with errors.Is and map them to a response with ErrorCode.
var (
	// ErrInvalidID: an id is empty, longer than idBytesMax or has characters
	// outside [A-Za-z0-9._-].
	ErrInvalidID = &Error{CodeInvalid, "invalid id"}
	// ErrInvalidAmount: an amount is out of range (not positive where it must
	// be, negative, or beyond creditsMax/balanceMax).
	ErrInvalidAmount = &Error{CodeInvalid, "invalid amount"}
	// ErrInvalidReason: a required reason is empty.
	ErrInvalidReason = &Error{CodeInvalid, "invalid reason"}
	// ErrInvalidPurchase: a purchase does not match its package, or its
	// provider, currency or price is invalid.
	ErrInvalidPurchase = &Error{CodeInvalid, "invalid purchase"}
	// ErrInvalidPrice: a configured price is negative or too large.
	ErrInvalidPrice = &Error{CodeInvalid, "invalid price"}
	// ErrUnknownJobType: a job type is not one of JobTypes().
	ErrUnknownJobType = &Error{CodeInvalid, "unknown job type"}
	// ErrInvalidPriority: a priority is not low, normal or high.
	ErrInvalidPriority = &Error{CodeInvalid, "invalid priority"}
	// ErrInvalidPayload: a payload is neither an s3://, ipfs:// or https://
	// URI nor valid inline JSON.
	ErrInvalidPayload = &Error{CodeInvalid, "invalid payload"}
	// ErrPayloadTooLarge: a payload exceeds PayloadURIBytesMax or
	// PayloadInlineBytesMax.
	ErrPayloadTooLarge = &Error{CodeTooLarge, "payload too large"}
	// ErrInvalidResult: a completion's SHA-256 is not 64 hex digits or its
	// size is out of range.
	ErrInvalidResult = &Error{CodeInvalid, "invalid result"}
	// ErrInvalidNode: a node's name, job types or slots are invalid.
	ErrInvalidNode = &Error{CodeInvalid, "invalid node"}
	// ErrUnknownPackage: a credit package id is not one of Packages().
	ErrUnknownPackage = &Error{CodeInvalid, "unknown credit package"}

	// ErrInsufficientCredits: a hold is larger than the available credits.
	ErrInsufficientCredits = &Error{CodeInsufficientCredits, "insufficient credits"}
	// ErrNoHealthyNodes: no healthy node serves the job type. The domain does
	// not decide health; command handlers return it.
	ErrNoHealthyNodes = &Error{CodeNoHealthyNodes, "no healthy nodes"}
	// ErrBusy: a stream stayed contended by other processes beyond the
	// retry budget; the command did nothing and may be sent again.
	ErrBusy = &Error{CodeUnavailable, "busy, try again"}

	// ErrIdempotencyConflict: a purchase, grant or refund id (or a checkout
	// session) was used before with different details.
	ErrIdempotencyConflict = &Error{CodeConflict, "idempotency key reused with different details"}
	// ErrHoldExists: the job already has a hold (open, deducted or released).
	ErrHoldExists = &Error{CodeConflict, "job already has a hold"}
	// ErrNoOpenHold: the job has no open hold to deduct or release.
	ErrNoOpenHold = &Error{CodeConflict, "job has no open hold"}
	// ErrAlreadyDeducted: the job's hold was already deducted.
	ErrAlreadyDeducted = &Error{CodeConflict, "job already charged"}
	// ErrNotDeducted: a refund names a job that was never charged.
	ErrNotDeducted = &Error{CodeConflict, "job was not charged"}
	// ErrRefundExceedsDeduction: the job's refunds would exceed its charge.
	ErrRefundExceedsDeduction = &Error{CodeConflict, "refund exceeds charge"}

	// ErrJobNotFound: the job stream is empty (never submitted).
	ErrJobNotFound = &Error{CodeNotFound, "job not found"}
	// ErrJobExists: Submit on a job that was already submitted.
	ErrJobExists = &Error{CodeConflict, "job already exists"}
	// ErrInvalidTransition: the job's status does not allow the command.
	// Returned as *InvalidTransitionError, which names from and to.
	ErrInvalidTransition = &Error{CodeConflict, "invalid job transition"}
	// ErrNotCancellable: cancel of a job that is not QUEUED or DISPATCHED.
	// Returned as *InvalidTransitionError, which also matches
	// ErrInvalidTransition.
	ErrNotCancellable = &Error{CodeConflict, "job is not cancellable"}
	// ErrWrongNode: a node reports on a job dispatched to another node.
	ErrWrongNode = &Error{CodeForbidden, "job is not dispatched to this node"}
	// ErrNotTimedOut: TimeOut before DispatchTimeout has passed.
	ErrNotTimedOut = &Error{CodeConflict, "job dispatch has not timed out"}

	// ErrNodeNotFound: the node stream is empty (never enrolled).
	ErrNodeNotFound = &Error{CodeNotFound, "node not found"}
	// ErrNodeExists: Enroll on a node that is already enrolled.
	ErrNodeExists = &Error{CodeConflict, "node already enrolled"}
	// ErrNodeRetired: a command on a retired node.
	ErrNodeRetired = &Error{CodeConflict, "node is retired"}

	// ErrUnknownEventType: DecodeEvent or EncodeEvent met a type that is not
	// registered. It means version skew or corruption, hence CodeInternal.
	ErrUnknownEventType = &Error{CodeInternal, "unknown event type"}
)

// InvalidTransitionError is returned when a job's status does not allow a
// command. It matches ErrInvalidTransition with errors.Is, and also
// ErrNotCancellable when To is StatusCancelled.
type InvalidTransitionError struct {
	From Status // the job's status when the command arrived
	To   Status // the status the command would have led to
}

// Error names both statuses.
func (e *InvalidTransitionError) Error() string {
	return fmt.Sprintf("invalid job transition from %s to %s", e.From, e.To)
}

// Unwrap returns the sentinels the error matches, the most specific first, so
// that errors.As finds its *Error (and so its Code).
func (e *InvalidTransitionError) Unwrap() []error {
	if e.To == StatusCancelled {
		return []error{ErrNotCancellable, ErrInvalidTransition}
	}
	return []error{ErrInvalidTransition}
}

package domain

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, ""},
		{"plain", errors.New("disk on fire"), CodeInternal},
		{"ErrInsufficientCredits", ErrInsufficientCredits, CodeInsufficientCredits},
		{"wrapped", fmt.Errorf("hold: %w", ErrInsufficientCredits), CodeInsufficientCredits},
		{"ErrJobNotFound", ErrJobNotFound, CodeNotFound},
		{"ErrPayloadTooLarge", ErrPayloadTooLarge, CodeTooLarge},
		{"ErrWrongNode", ErrWrongNode, CodeForbidden},
		{"ErrNoHealthyNodes", ErrNoHealthyNodes, CodeNoHealthyNodes},
		{"ErrUnknownEventType", ErrUnknownEventType, CodeInternal},
		{"Errorf", Errorf(CodeRateLimited, "wait %d s", 60), CodeRateLimited},
		{"InvalidTransitionError", &InvalidTransitionError{StatusQueued, StatusRunning}, CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.want {
				t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"internal hides details", errors.New("pq: password wrong for admin"), "internal error"},
		{"application keeps context", fmt.Errorf("%w: need 10", ErrInsufficientCredits), "insufficient credits: need 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorMessage(tt.err); got != tt.want {
				t.Errorf("ErrorMessage() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInvalidTransitionError(t *testing.T) {
	t.Run("ErrInvalidTransition", func(t *testing.T) {
		var err error = &InvalidTransitionError{From: StatusQueued, To: StatusRunning}
		if !errors.Is(err, ErrInvalidTransition) {
			t.Errorf("errors.Is(%v, ErrInvalidTransition) = false, want true", err)
		}
		if errors.Is(err, ErrNotCancellable) {
			t.Errorf("errors.Is(%v, ErrNotCancellable) = true, want false", err)
		}
		var ite *InvalidTransitionError
		if !errors.As(fmt.Errorf("ctx: %w", err), &ite) || ite.From != StatusQueued || ite.To != StatusRunning {
			t.Errorf("errors.As = %+v, want QUEUED→RUNNING", ite)
		}
		if got, want := err.Error(), "invalid job transition from QUEUED to RUNNING"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("ErrNotCancellable", func(t *testing.T) {
		var err error = &InvalidTransitionError{From: StatusRunning, To: StatusCancelled}
		if !errors.Is(err, ErrNotCancellable) || !errors.Is(err, ErrInvalidTransition) {
			t.Errorf("cancel error %v must match ErrNotCancellable and ErrInvalidTransition", err)
		}
	})
}

// TestSentinelCodes checks every sentinel carries a code from the stable set.
func TestSentinelCodes(t *testing.T) {
	valid := map[Code]bool{CodeInvalid: true, CodeNotFound: true, CodeConflict: true,
		CodeInsufficientCredits: true, CodeNoHealthyNodes: true, CodeUnauthorized: true,
		CodeForbidden: true, CodeTooLarge: true, CodeRateLimited: true, CodeInternal: true}
	for _, e := range []*Error{ErrInvalidID, ErrInvalidAmount, ErrInvalidReason, ErrInvalidPurchase,
		ErrInvalidPrice, ErrUnknownJobType, ErrInvalidPriority, ErrInvalidPayload, ErrPayloadTooLarge,
		ErrInvalidResult, ErrInvalidNode, ErrUnknownPackage, ErrInsufficientCredits, ErrNoHealthyNodes,
		ErrIdempotencyConflict, ErrHoldExists, ErrNoOpenHold, ErrAlreadyDeducted, ErrNotDeducted,
		ErrRefundExceedsDeduction, ErrJobNotFound, ErrJobExists, ErrInvalidTransition, ErrNotCancellable,
		ErrWrongNode, ErrNotTimedOut, ErrNodeNotFound, ErrNodeExists, ErrNodeRetired, ErrUnknownEventType} {
		if !valid[e.Code] || e.Message == "" {
			t.Errorf("sentinel %q has code %q", e.Message, e.Code)
		}
	}
}

package schemas

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestKindOf(t *testing.T) {
	refused := errors.New("connection refused")
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"unclassified", errors.New("nil pointer"), nil},
		{"wrapped not found", fmt.Errorf("partner acme: %w", ErrNotFound), ErrNotFound},
		{"file error", FileError(ErrEmptyFile, errors.New("no rows")), ErrEmptyFile},
		{"columns", fmt.Errorf("%w: no id column", ErrColumnsMismatch), ErrColumnsMismatch},
		{"busy", fmt.Errorf("reserve: %w", ErrBusy), ErrBusy},
		{"marked outage", MarkUnavailable(context.Background(), refused, func(error) bool { return true }), ErrUnavailable},
		// The system that should have said "not found" was down.
		{"outage before not found", fmt.Errorf("%w: %w", ErrUnavailable, ErrNotFound), ErrUnavailable},
		{"cancelled is not an outage", MarkUnavailable(cancelled(), refused, func(error) bool { return true }), nil},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("%s: KindOf(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

package schemas

import "errors"

// The domain's failures are its sentinel errors: ErrBadCursor,
// ErrNotFound, ErrExists, ErrUnreadableFile, ErrEmptyFile,
// ErrColumnsMismatch, ErrBusy and ErrUnavailable. Stores, connectors and
// stages wrap them (%w) so callers test with errors.Is; KindOf says which
// one an error is, so the API answers each the same way wherever it comes
// from.

// kinds are the sentinels in the order KindOf tries them: an outage first,
// since whatever else an error says, the system that should have answered
// was down.
func kinds() []error {
	return []error{
		ErrUnavailable, ErrBusy, ErrBadCursor, ErrNotFound, ErrExists,
		ErrUnreadableFile, ErrEmptyFile, ErrColumnsMismatch,
	}
}

// KindOf is the domain failure err wraps, or nil when it wraps none: a
// failure nobody classified, which is a bug to report rather than
// something the caller did.
func KindOf(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range kinds() {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

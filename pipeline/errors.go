package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// terminalError marks a failure that retrying cannot fix (bad data): the
// runner dead-letters the message at once instead of retrying it.
type terminalError struct {
	err     error
	refused bool // the message is not what its headers claim
}

func (e terminalError) Error() string { return e.err.Error() }
func (e terminalError) Unwrap() error { return e.err }

// Terminal marks err as permanent. Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err: err}
}

// Refuse marks a message the stage will not act on because it is not what
// it claims to be, such as a forged upload event. Like a Terminal error it
// is dead-lettered at once, but without the source position its headers
// claim, so nothing is noted against the upload they name. Refuse(nil) is nil.
func Refuse(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err: err, refused: true}
}

// IsTerminal reports whether err, or an error it wraps, was marked Terminal
// or Refuse.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}

// isRefused reports whether err, or an error it wraps, was marked Refuse.
func isRefused(err error) bool {
	var t terminalError
	return errors.As(err, &t) && t.refused
}

// laterError asks for redelivery after a delay because the message came too
// early (its prerequisites are still on their way), not because it failed.
type laterError struct {
	err   error
	delay time.Duration
}

func (e laterError) Error() string { return e.err.Error() }
func (e laterError) Unwrap() error { return e.err }

// Later redelivers the message after delay without counting it towards the
// dead-letter limit (up to MaxEarly deliveries).
func Later(err error, delay time.Duration) error { return laterError{err, delay} }

// MaxEarly bounds how often a message may come too early before it is
// dead-lettered after all.
const MaxEarly = 2000

// Transient reports whether err is JetStream briefly unable to answer, as a
// cluster is while it elects a leader after losing a node: no responders, a
// timeout, a leadership change, a connection being re-established. It says
// nothing about the message: the same work succeeds a moment later, so it
// costs no attempt towards the dead-letter limit. Terminal errors never are.
func Transient(err error) bool {
	if err == nil || IsTerminal(err) {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) && api.Code == 503 {
		return true // "JetStream system temporarily unavailable"
	}
	for _, t := range []error{
		nats.ErrTimeout, context.DeadlineExceeded, nats.ErrNoResponders, jetstream.ErrNoStreamResponse,
		jetstream.ErrConsumerLeadershipChanged, jetstream.ErrServerShutdown, jetstream.ErrAsyncPublishTimeout,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrNoServers,
		errNoResponders, errConsumerDeleted,
	} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

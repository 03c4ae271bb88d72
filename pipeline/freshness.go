package pipeline

import (
	"context"
	"time"
)

// Sinks whose freshness feedline_freshness_seconds reports.
const (
	SinkSearch    = "search"
	SinkAnalytics = "analytics"
	SinkFeed      = "feed"
)

// RecordFreshness is middleware for a stage that makes writes visible in
// sink: each message its handler settled without error is observed as the
// time since the write it descends from was accepted. A message without an
// acceptance time (published before it was stamped) is not observed.
func RecordFreshness(m *Metrics, sink string) Middleware {
	obs := m.Freshness.WithLabelValues(sink)
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, msgs []*Message) []error {
			errs := next(ctx, msgs)
			now := time.Now()
			for i, msg := range msgs {
				if i < len(errs) && errs[i] != nil {
					continue
				}
				if at, ok := msg.Accepted(); ok {
					obs.Observe(max(now.Sub(at), 0).Seconds())
				}
			}
			return errs
		}
	}
}

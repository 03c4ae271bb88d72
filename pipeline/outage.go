package pipeline

import (
	"context"
	"log/slog"
	"time"
)

// Pause bounds for a stage whose backend is unavailable: the first probe
// comes soon, later ones back off so a long outage costs little.
const (
	minPause = time.Second
	maxPause = 30 * time.Second
	// maxExcused bounds the remembered deliveries; past it the memory is
	// dropped and those messages count attempts as usual.
	maxExcused = 1 << 16
)

// outage is one stage's view of its backend: while the backend is
// unavailable the stage stops fetching, so messages wait in JetStream
// instead of using up their attempts.
type outage struct {
	stage  string
	gate   func(ctx context.Context) error
	paused func(bool)
	until  time.Time
	pause  time.Duration
	// excused counts, per stream sequence, deliveries that met an outage;
	// they do not count towards the dead-letter limit.
	excused map[uint64]uint64
}

func newOutage(stage string, gate func(context.Context) error, paused func(bool)) *outage {
	return &outage{stage: stage, gate: gate, paused: paused, pause: minPause, excused: map[uint64]uint64{}}
}

// trip starts (or keeps) a pause after a handler reported ErrUnavailable,
// and returns how long the message should wait before redelivery.
func (o *outage) trip(seq uint64) time.Duration {
	if len(o.excused) >= maxExcused {
		clear(o.excused)
	}
	o.excused[seq]++
	if o.until.IsZero() {
		o.until = time.Now().Add(o.pause)
		o.paused(true)
	}
	return o.pause
}

// attempts is how many deliveries of the message count as real attempts.
func (o *outage) attempts(seq, delivered uint64) uint64 {
	return delivered - min(o.excused[seq], delivered)
}

// settled forgets a message that was acknowledged or dead-lettered.
func (o *outage) settled(seq uint64) { delete(o.excused, seq) }

// ready reports whether the stage may fetch. While paused it waits out the
// pause, then asks the gate; a stage without a gate lets its next batch be
// the probe.
func (o *outage) ready(ctx context.Context, log *slog.Logger) bool {
	if o.until.IsZero() {
		return true
	}
	sleep(ctx, time.Until(o.until))
	if ctx.Err() != nil {
		return false
	}
	if o.gate != nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := o.gate(pctx)
		cancel()
		if err != nil {
			o.pause = min(o.pause*2, maxPause)
			o.until = time.Now().Add(o.pause)
			log.Warn("backend still unavailable; stage stays paused", "retry_in", o.pause, "err", err)
			return false
		}
	}
	log.Info("stage resumes after a backend outage")
	o.until = time.Time{}
	if o.gate != nil {
		o.pause = minPause
	} else {
		// The next batch is the probe; should it fail, wait longer.
		o.pause = min(o.pause*2, maxPause)
	}
	o.paused(false)
	return true
}

// recovered resets the pause after a message went through.
func (o *outage) recovered() { o.pause = minPause }

package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"feedline/schemas"
)

// Message is one delivery a stage handles.
type Message struct {
	Subject   string
	Data      []byte
	Metadata  Metadata // every header it was stored with
	Sequence  uint64   // stream sequence: stable across redeliveries
	Delivered uint64   // 1 on the first delivery
	msg       *nats.Msg
}

// InProgress tells JetStream the handler is still working, so a long
// handler (a 2 GB file) is not redelivered while it runs.
func (m *Message) InProgress() error {
	if m.msg == nil {
		return nil
	}
	return m.msg.InProgress()
}

// Source reads the source position from the message's metadata.
func (m *Message) Source() schemas.SourcePosition {
	row, _ := strconv.ParseInt(m.Metadata.Get(schemas.HeaderRow), 10, 64)
	batch, _ := strconv.Atoi(m.Metadata.Get(schemas.HeaderBatch))
	return schemas.SourcePosition{
		Partner: m.Metadata.Get(schemas.HeaderPartner),
		Upload:  m.Metadata.Get(schemas.HeaderUpload),
		Row:     row,
		Batch:   batch,
	}
}

// Handler handles one message. A nil error acknowledges it; an error marked
// Terminal dead-letters it; any other error retries it with backoff.
type Handler func(ctx context.Context, m *Message) error

// BatchHandler handles a fetched batch; errs[i] (or a nil slice for "all
// good") settles msgs[i]. Sinks that write a batch at once use this form.
type BatchHandler func(ctx context.Context, msgs []*Message) []error

// Middleware wraps a BatchHandler with cross-cutting behaviour.
type Middleware func(BatchHandler) BatchHandler

// PerMessage adapts a Handler to a BatchHandler, one message at a time.
func PerMessage(h Handler) BatchHandler {
	return func(ctx context.Context, msgs []*Message) []error {
		var errs []error
		for i, m := range msgs {
			mctx, end := messageContext(ctx, m)
			err := h(mctx, m)
			end()
			if err != nil {
				if errs == nil {
					errs = make([]error, len(msgs))
				}
				errs[i] = err
			}
		}
		return errs
	}
}

// Concurrent adapts a Handler to a BatchHandler that handles up to workers
// messages of a batch at once (fewer than one is one). Only for handlers
// whose messages need no order among themselves (versions settle order
// downstream).
func Concurrent(h Handler, workers int) BatchHandler {
	workers = max(workers, 1)
	return func(ctx context.Context, msgs []*Message) []error {
		errs := make([]error, len(msgs))
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < min(workers, len(msgs)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					mctx, end := messageContext(ctx, msgs[i])
					errs[i] = h(mctx, msgs[i])
					end()
				}
			}()
		}
		for i := range msgs {
			next <- i
		}
		close(next)
		wg.Wait()
		return errs
	}
}

// ConcurrentByKey adapts a Handler to a BatchHandler that keeps per-key
// order: messages with the same key are handled one after another in
// delivery order, different keys at once on up to workers goroutines (one
// author's follow and unfollow stay in order; different authors' posts
// fan out in parallel). Fewer than one worker is one.
func ConcurrentByKey(h Handler, workers int, key func(*Message) string) BatchHandler {
	workers = max(workers, 1)
	return func(ctx context.Context, msgs []*Message) []error {
		groups := map[string][]int{}
		var order []string
		for i, m := range msgs {
			k := key(m)
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], i)
		}
		errs := make([]error, len(msgs))
		next := make(chan []int)
		var wg sync.WaitGroup
		for w := 0; w < min(workers, len(order)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for idx := range next {
					for n, i := range idx {
						mctx, end := messageContext(ctx, msgs[i])
						errs[i] = h(mctx, msgs[i])
						end()
						if errs[i] != nil {
							// Later messages of the key wait for this one.
							for _, j := range idx[n+1:] {
								errs[j] = Later(fmt.Errorf("an earlier message of the same key failed: %w", errs[i]), time.Second)
							}
							break
						}
					}
				}
			}()
		}
		for _, k := range order {
			next <- groups[k]
		}
		close(next)
		wg.Wait()
		return errs
	}
}

// Stage describes one worker: which stream it reads and how it handles it.
type Stage struct {
	Name      string
	Stream    string
	Subjects  []string // filter; empty means the whole stream
	Handle    BatchHandler
	BatchSize int           // messages per fetch; default 64
	MaxBytes  int           // bytes per fetch; default 8 MiB, so a burst never swamps the connection
	MaxWait   time.Duration // longest wait for a first message; default 1s
	// Linger is how long a fetch keeps filling a batch once a message came
	// (default 20ms); sinks that prefer few large writes set it longer,
	// latency-bound stages (feed fan-out) shorter.
	Linger     time.Duration
	AckWait    time.Duration // redelivery after silence (a crashed worker); default 15s
	MaxDeliver int           // attempts before dead-letter; default 5
	// Backoff is the redelivery delay after the given failed attempt; default
	// 1s, 2s, 4s … capped at 1 minute.
	Backoff func(attempt uint64) time.Duration
	// HandlerTimeout bounds one batch (default 5 minutes); heartbeats keep
	// the messages from redelivery meanwhile.
	HandlerTimeout time.Duration
	Middleware     []Middleware
	// Gate, when set, says whether the stage's backend takes writes again
	// after a handler reported schemas.ErrUnavailable; the paused stage
	// polls it before fetching.
	Gate func(ctx context.Context) error
}

func (s *Stage) defaults() {
	if s.BatchSize <= 0 {
		s.BatchSize = 64
	}
	if s.MaxBytes <= 0 {
		s.MaxBytes = 8 << 20
	}
	if s.MaxWait <= 0 {
		s.MaxWait = time.Second
	}
	if s.Linger <= 0 {
		s.Linger = fetchLinger
	}
	if s.AckWait <= 0 {
		s.AckWait = 15 * time.Second
	}
	if s.MaxDeliver <= 0 {
		s.MaxDeliver = 5
	}
	if s.HandlerTimeout <= 0 {
		s.HandlerTimeout = 5 * time.Minute
	}
	if s.Backoff == nil {
		s.Backoff = ExponentialBackoff(time.Second, time.Minute)
	}
}

// ExponentialBackoff doubles from base up to limit.
func ExponentialBackoff(base, limit time.Duration) func(uint64) time.Duration {
	return func(attempt uint64) time.Duration {
		d := base
		for i := uint64(1); i < attempt && d < limit; i++ {
			d *= 2
		}
		return min(d, limit)
	}
}

// Runner runs stages against the bus. Build it with NewRunner.
type Runner struct {
	bus     *Bus
	pub     Publisher
	metrics *Metrics
	log     *slog.Logger
	// deadLettered, when set, hears of every dead-lettered message, so the
	// upload it belongs to can report the failure.
	deadLettered func(ctx context.Context, d schemas.DeadLetter)
	// tracing, when set, gives each batch a span continuing its messages'
	// traces; nil traces nothing.
	tracing trace.TracerProvider

	mu    sync.Mutex
	bound map[string]bool
}

// RunnerOption changes a runner NewRunner builds.
type RunnerOption func(*Runner)

// OnDeadLetter has the runner tell heard of every message it dead-letters,
// after the entry is stored.
func OnDeadLetter(heard func(ctx context.Context, d schemas.DeadLetter)) RunnerOption {
	return func(r *Runner) { r.deadLettered = heard }
}

// WithTracing has the runner give each batch a span continuing its
// messages' traces; without it nothing is traced.
func WithTracing(tp trace.TracerProvider) RunnerOption {
	return func(r *Runner) { r.tracing = tp }
}

// NewRunner builds a runner on an open bus; metrics and log are required.
func NewRunner(bus *Bus, m *Metrics, log *slog.Logger, opts ...RunnerOption) (*Runner, error) {
	var missing []string
	if bus == nil {
		missing = append(missing, "an open Bus")
	}
	if m == nil {
		missing = append(missing, "Metrics (NewMetrics)")
	}
	if log == nil {
		missing = append(missing, "a logger")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("pipeline: NewRunner needs %s", strings.Join(missing, ", "))
	}
	r := &Runner{bus: bus, pub: bus.Publisher(), metrics: m, log: log, bound: map[string]bool{}}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// check answers an error for a Runner not built by NewRunner, which has
// nothing to run on, rather than panicking.
func (r *Runner) check() error {
	if r.bus == nil {
		return errors.New("pipeline: a Runner has no bus; build it with NewRunner on an open bus")
	}
	return nil
}

// Bound lists the stages whose consumers are bound, for readiness.
func (r *Runner) Bound() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.bound))
	for k, v := range r.bound {
		out[k] = v
	}
	return out
}

func (r *Runner) setBound(name string, v bool) {
	r.mu.Lock()
	if r.bound == nil {
		r.bound = map[string]bool{}
	}
	r.bound[name] = v
	r.mu.Unlock()
}

// Consumer declares (idempotently) the stage's durable pull consumer.
func (r *Runner) Consumer(ctx context.Context, s Stage) (jetstream.Consumer, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	s.defaults()
	cfg := jetstream.ConsumerConfig{
		Durable:   s.Name,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   s.AckWait,
		// Unlimited at the server: the runner itself dead-letters after
		// MaxDeliver, so nothing is ever dropped silently.
		MaxDeliver:    -1,
		MaxAckPending: max(s.BatchSize*8, 1024),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch len(s.Subjects) {
	case 0:
	case 1:
		cfg.FilterSubject = s.Subjects[0]
	default:
		cfg.FilterSubjects = s.Subjects
	}
	c, err := r.bus.js.CreateOrUpdateConsumer(ctx, s.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("declare consumer %s on %s: %w", s.Name, s.Stream, err)
	}
	return c, nil
}

// Run fetches and handles batches until ctx is cancelled. The batch in hand
// when ctx ends is finished; nothing fetched is left unsettled. A NATS
// cluster losing a node, electing a leader or moving the consumer is waited
// out: the stage asks again, and declares its consumer again when it is gone.
func (r *Runner) Run(ctx context.Context, s Stage) error {
	if err := r.check(); err != nil {
		return err
	}
	s.defaults()
	log := r.log.With("stage", s.Name)
	cons, err := r.Consumer(ctx, s)
	for err != nil && Transient(err) && ctx.Err() == nil {
		log.Warn("declaring the consumer failed; retrying", "err", err)
		sleep(ctx, time.Second)
		cons, err = r.Consumer(ctx, s)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	pull, err := newPuller(r.bus.nc, s.Stream, s.Name)
	if err != nil {
		return err
	}
	defer pull.close()
	r.setBound(s.Name, true)
	defer r.setBound(s.Name, false)

	handle := s.Handle
	for i := len(s.Middleware) - 1; i >= 0; i-- {
		handle = s.Middleware[i](handle)
	}
	handle = r.observe(s.Name, handle)

	go r.watchLag(ctx, s.Name, cons)
	r.metrics.zero(s.Name)
	log.Info("stage started", "stream", s.Stream, "subjects", s.Subjects)
	out := newOutage(s.Name, s.Gate, func(p bool) {
		v := 0.0
		if p {
			v = 1
		}
		r.metrics.Paused.WithLabelValues(s.Name).Set(v)
	})
	away := &leaderless{log: log}
	for ctx.Err() == nil {
		if !out.ready(ctx, log) {
			continue
		}
		msgs, err := fetch(ctx, pull, s.BatchSize, s.MaxBytes, s.MaxWait, min(s.Linger, fetchLinger))
		if err == nil && len(msgs) > 0 && s.Linger > fetchLinger {
			msgs = linger(ctx, pull, msgs, s.BatchSize, s.MaxBytes, s.Linger)
		}
		// What arrived is handled even when the pull then failed: it is
		// delivered, and would otherwise wait out the ack wait.
		if len(msgs) > 0 {
			r.handleBatch(ctx, s, handle, msgs, out, log)
		}
		switch {
		case err == nil:
			away.back()
		case ctx.Err() != nil:
		case errors.Is(err, errNoResponders) || errors.Is(err, errConsumerDeleted):
			if away.gone(err) {
				// Declared again if it is gone; a no-op while it only
				// waits for a leader.
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if _, derr := r.Consumer(dctx, s); derr != nil {
					log.Debug("declaring the consumer again failed", "err", derr)
				}
				cancel()
			}
			sleep(ctx, away.pause())
		default:
			log.Warn("fetch failed", "err", err)
			sleep(ctx, time.Second)
		}
	}
	log.Info("stage stopped")
	return nil
}

// leaderless tracks a consumer nobody serves: the cluster is electing its
// leader, or it is gone. Pulls back off from 100ms to 5s; from the third
// unanswered pull on, the consumer is declared again before each pull.
type leaderless struct {
	log   *slog.Logger
	tries int
	since time.Time
}

func (l *leaderless) gone(err error) bool {
	if l.tries == 0 {
		l.since = time.Now()
		l.log.Warn("the stage's consumer does not answer; waiting for the NATS cluster", "err", err)
	}
	l.tries++
	return l.tries >= 3 || errors.Is(err, errConsumerDeleted)
}

func (l *leaderless) pause() time.Duration {
	return min(100*time.Millisecond<<min(l.tries-1, 6), 5*time.Second)
}

func (l *leaderless) back() {
	if l.tries > 0 {
		l.log.Info("the stage's consumer answers again", "after", time.Since(l.since).Round(time.Millisecond))
	}
	l.tries = 0
}

// fetchLinger is how long a fetch waits to fill a batch once messages flow.
const fetchLinger = 20 * time.Millisecond

// fetch takes what is ready (up to n messages and maxBytes), or else waits
// up to wait for the first message.
func fetch(ctx context.Context, p *puller, n, maxBytes int, wait, fill time.Duration) ([]*nats.Msg, error) {
	msgs, err := p.pull(ctx, n, maxBytes, fill)
	if len(msgs) > 0 || err != nil {
		return msgs, err
	}
	// Nothing ready: wait for the first message (bounded, so shutdown is prompt).
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	if wait <= 0 {
		return nil, ctx.Err()
	}
	return p.pull(ctx, 1, 0, wait)
}

// linger tops a batch up until it holds n messages or maxBytes, or d has
// passed since the first message, so a sink writes thousands of rows at once
// even when they trickle in.
func linger(ctx context.Context, p *puller, msgs []*nats.Msg, n, maxBytes int, d time.Duration) []*nats.Msg {
	size := 0
	for _, m := range msgs {
		size += len(m.Data)
	}
	deadline := time.Now().Add(d - fetchLinger)
	for len(msgs) < n && size < maxBytes && ctx.Err() == nil {
		wait := time.Until(deadline)
		if wait <= time.Millisecond {
			break
		}
		more, err := p.pull(ctx, n-len(msgs), maxBytes-size, wait)
		for _, m := range more {
			msgs = append(msgs, m)
			size += len(m.Data)
		}
		if err != nil || len(more) == 0 {
			break // what is in hand is a fine batch; the next fetch reports the error
		}
	}
	return msgs
}

func (r *Runner) handleBatch(ctx context.Context, s Stage, handle BatchHandler, raw []*nats.Msg, out *outage, log *slog.Logger) {
	msgs := make([]*Message, 0, len(raw))
	var poisoned []*Message
	for _, jm := range raw {
		m := &Message{Subject: jm.Subject, Data: jm.Data, Metadata: metadataOf(jm.Header), msg: jm}
		if md, err := jm.Metadata(); err == nil {
			m.Sequence = md.Sequence.Stream
			m.Delivered = md.NumDelivered
		}
		if addressedElsewhere(m, s.Name) {
			if err := jm.Ack(); err != nil {
				log.Warn("ack of a dead letter replayed to another stage failed", "seq", m.Sequence, "err", err)
			}
			continue
		}
		// Delivered past the limit without ever being settled: the handler
		// crashed or hung on it every time. Do not try it again.
		if m.Delivered > MaxEarly {
			poisoned = append(poisoned, m)
			continue
		}
		msgs = append(msgs, m)
	}
	for _, m := range poisoned {
		r.deadLetter(s, m, fmt.Errorf("no answer from the stage after %d deliveries (ack wait %s)", m.Delivered-1, s.AckWait), log)
	}
	if len(msgs) == 0 {
		return
	}
	// A shutdown lets the batch finish: handlers see a context that is not
	// cancelled with the stage, but bounded.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.HandlerTimeout)
	defer cancel()
	hctx = context.WithValue(hctx, tallyKey{}, &tally{stage: s.Name, metrics: r.metrics})
	hctx, endSpan := r.startBatch(hctx, s.Name, msgs)
	stopBeat := heartbeat(msgs, s.AckWait/3)
	errs := handle(hctx, msgs)
	stopBeat()
	endSpan(errs)
	// A batch that ran out of its time failed on its own account, whatever
	// deadline errors its calls report.
	timedOut := hctx.Err() != nil
	for i, m := range msgs {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		r.settle(s, m, err, !timedOut && Transient(err), out, log)
	}
}

// heartbeat keeps a slow batch from being redelivered while it is being
// handled, so AckWait can stay short and a crashed worker's messages return
// quickly.
func heartbeat(msgs []*Message, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// settle acknowledges, redelivers or dead-letters m after err. transient
// says err is JetStream's brief unavailability, not the message's failure.
func (r *Runner) settle(s Stage, m *Message, err error, transient bool, out *outage, log *slog.Logger) {
	var later laterError
	switch {
	case errors.As(err, &later) && m.Delivered < MaxEarly:
		log.Debug("message came early; redelivering", "seq", m.Sequence, "in", later.delay, "why", later.err)
		nak(m, later.delay, log)
	case err == nil:
		if ackErr := m.msg.Ack(); ackErr != nil {
			log.Warn("ack failed; the message will be redelivered", "seq", m.Sequence, "err", ackErr)
		}
		out.settled(m.Sequence)
		out.recovered()
		r.metrics.Processed.WithLabelValues(s.Name).Inc()
	case (errors.Is(err, schemas.ErrUnavailable) && !IsTerminal(err) || transient) && m.Delivered < MaxEarly:
		// A backend down, or JetStream electing a leader: the stage pauses
		// and the message waits in JetStream without using an attempt.
		delay := out.trip(m.Sequence)
		log.Warn("backend unavailable; stage pauses and leaves the message in JetStream", "seq", m.Sequence, "retry_in", delay, "err", err)
		r.metrics.Failed.WithLabelValues(s.Name, "unavailable").Inc()
		nak(m, delay, log)
	case IsTerminal(err) || out.attempts(m.Sequence, m.Delivered) >= uint64(s.MaxDeliver):
		out.settled(m.Sequence)
		r.deadLetter(s, m, err, log)
	default:
		delay := s.Backoff(m.Delivered)
		log.Warn("handler failed; retrying", "seq", m.Sequence, "attempt", m.Delivered, "retry_in", delay, "err", err, "source", m.Source())
		r.metrics.Failed.WithLabelValues(s.Name, "retry").Inc()
		nak(m, delay, log)
	}
}

// nak asks for m again after delay. When the Nak is lost, the message still
// comes back, after the ack wait instead.
func nak(m *Message, delay time.Duration, log *slog.Logger) {
	if err := m.msg.NakWithDelay(delay); err != nil {
		log.Warn("nak failed; the message will be redelivered after the ack wait", "seq", m.Sequence, "err", err)
	}
}

// deadLetter stores the message on dlq.<stage> and terminates it; if the
// dead-letter publish fails the message is retried instead of lost.
func (r *Runner) deadLetter(s Stage, m *Message, cause error, log *slog.Logger) {
	dl := schemas.DeadLetter{
		Stage: s.Name, Subject: m.Subject, Sequence: m.Sequence, Error: cause.Error(),
		Attempts: m.Delivered, Source: m.Source(), Headers: m.Metadata, Payload: m.Data, At: time.Now().UTC(),
	}
	if isRefused(cause) {
		dl.Source = schemas.SourcePosition{} // the headers still show what it claimed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.PublishDeadLetter(ctx, dl, schemas.MsgID("dlq", s.Name, m.Sequence))
	if err != nil {
		log.Error("dead-letter publish failed; retrying the message", "seq", m.Sequence, "err", err)
		nak(m, s.Backoff(m.Delivered), log)
		return
	}
	log.Error("message dead-lettered", "seq", m.Sequence, "attempts", m.Delivered, "err", cause, "source", dl.Source)
	r.metrics.Failed.WithLabelValues(s.Name, "dead_letter").Inc()
	if r.deadLettered != nil {
		r.deadLettered(ctx, dl)
	}
	if err := m.msg.Term(); err != nil {
		// Stored on the DLQ already; the redelivery is dead-lettered again
		// under the same message id, which the stream drops.
		log.Warn("term failed; the message will be redelivered after the ack wait", "seq", m.Sequence, "err", err)
	}
}

// PublishDeadLetter stores d on dlq.<stage>. Stages use it for a single
// item of a message they otherwise handled (one product a backend refused);
// msgID makes a repeated entry a duplicate.
func (r *Runner) PublishDeadLetter(ctx context.Context, d schemas.DeadLetter, msgID string) error {
	if err := r.check(); err != nil {
		return err
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	// A dead letter is not a message the stage sends downstream.
	ctx = context.WithValue(ctx, tallyKey{}, (*tally)(nil))
	_, err = r.pub.Publish(ctx, Outgoing{Subject: schemas.Subject(schemas.SubjectDLQ, d.Stage), MsgID: msgID, Data: data})
	return err
}

// observe counts messages and times batches.
func (r *Runner) observe(stage string, next BatchHandler) BatchHandler {
	return func(ctx context.Context, msgs []*Message) []error {
		r.metrics.In.WithLabelValues(stage).Add(float64(len(msgs)))
		start := time.Now()
		errs := next(ctx, msgs)
		r.metrics.Batch.WithLabelValues(stage).Observe(time.Since(start).Seconds())
		return errs
	}
}

func (r *Runner) watchLag(ctx context.Context, stage string, cons jetstream.Consumer) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := cons.Info(ictx); err == nil {
			r.metrics.Pending.WithLabelValues(stage).Set(float64(info.NumPending + uint64(info.NumAckPending)))
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

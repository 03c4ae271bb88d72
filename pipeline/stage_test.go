package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"feedline/schemas"
)

// The streams, buckets and object store the runtime's tests declare.
const (
	streamRaw      = "RAW"
	streamProducts = "PRODUCTS"
	streamDLQ      = "DLQ"
	testDuplicates = 20 * time.Minute
)

func testTopology() Topology {
	return Topology{
		Streams: []StreamSpec{
			{Name: streamRaw, Subjects: []string{"catalog.raw.>"}, MaxAge: 24 * time.Hour, Duplicates: testDuplicates},
			{Name: streamProducts, Subjects: []string{"catalog.product.>"}, Duplicates: testDuplicates},
			{Name: streamDLQ, Subjects: []string{schemas.SubjectDLQ + ".>"}, Duplicates: testDuplicates},
		},
		Buckets: []BucketSpec{
			{Name: "records", Description: "read back at once"},
			{Name: "reads", Description: "read in batches", ReplicaReads: true},
		},
		ObjectStores: []ObjectStoreSpec{{Name: "files", Description: "stored files"}},
	}
}

func testBus(t *testing.T, dir string) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Connect(ctx, BusConfig{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Declare(ctx, testTopology()); err != nil {
		t.Fatal(err)
	}
	return b
}

func quietRunner(b *Bus, opts ...RunnerOption) *Runner {
	r, err := NewRunner(b, NewMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		panic(err) // only a test that passes no bus
	}
	return r
}

// runStage runs s until stop is called; stop waits for the runner to return.
func runStage(t *testing.T, r *Runner, s Stage) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := r.Consumer(ctx, s); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx, s); err != nil {
			t.Error(err)
		}
	}()
	return func() { cancel(); <-done }
}

func publish(t *testing.T, b *Bus, subject, id, data string) {
	t.Helper()
	md := Metadata{schemas.HeaderPartner: "acme", schemas.HeaderUpload: "u1", schemas.HeaderRow: "42"}
	if _, err := (b.Publisher()).Publish(context.Background(), Outgoing{Subject: subject, MsgID: id, Data: []byte(data), Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deadLetters(t *testing.T, b *Bus, stage string) []schemas.DeadLetter {
	t.Helper()
	var out []schemas.DeadLetter
	_, err := b.Replay(context.Background(), streamDLQ, schemas.Subject(schemas.SubjectDLQ, stage), func(m *Message) error {
		var d schemas.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunnerRetriesTransientErrorsThenSucceeds(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var calls atomic.Int32
	var ok atomic.Bool
	stop := runStage(t, r, Stage{
		Name: "flaky", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"},
		Backoff: func(uint64) time.Duration { return 50 * time.Millisecond },
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			if calls.Add(1) < 3 {
				return errors.New("sink timed out")
			}
			if m.Delivered != 3 {
				t.Errorf("third call sees delivery %d", m.Delivered)
			}
			ok.Store(true)
			return nil
		}),
	})
	defer stop()
	publish(t, b, "catalog.raw.acme", "m1", "payload")
	waitFor(t, "third attempt", ok.Load)
	stop()
	if got := testutil.ToFloat64(r.metrics.Failed.WithLabelValues("flaky", "retry")); got != 2 {
		t.Errorf("retry count = %v, want 2", got)
	}
	if dl := deadLetters(t, b, "flaky"); len(dl) != 0 {
		t.Errorf("dead letters = %d, want none", len(dl))
	}
}

func TestRunnerDeadLettersTerminalErrorsAtOnce(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var calls atomic.Int32
	stop := runStage(t, r, Stage{
		Name: "strict", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"},
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			calls.Add(1)
			return Terminal(fmt.Errorf("price %q is not a number", "abc"))
		}),
	})
	defer stop()
	publish(t, b, "catalog.raw.acme", "m1", `{"bad":true}`)
	var dl []schemas.DeadLetter
	waitFor(t, "dead letter", func() bool { dl = deadLetters(t, b, "strict"); return len(dl) == 1 })
	d := dl[0]
	if d.Error != `price "abc" is not a number` || d.Attempts != 1 || string(d.Payload) != `{"bad":true}` {
		t.Errorf("dead letter = %+v", d)
	}
	if d.Source.Partner != "acme" || d.Source.Upload != "u1" || d.Source.Row != 42 {
		t.Errorf("source position = %+v", d.Source)
	}
	time.Sleep(300 * time.Millisecond)
	if calls.Load() != 1 {
		t.Errorf("terminal error handled %d times, want 1", calls.Load())
	}
}

// A refused message is dead-lettered at once like a terminal one, but the
// upload its headers name hears nothing of it.
func TestRunnerDeadLettersRefusedMessagesWithoutTheirClaimedSource(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	var heard []schemas.DeadLetter
	var mu sync.Mutex
	r := quietRunner(b, OnDeadLetter(func(_ context.Context, d schemas.DeadLetter) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, d)
	}))
	var calls atomic.Int32
	stop := runStage(t, r, Stage{
		Name: "guarded", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"},
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			calls.Add(1)
			return Refuse(errors.New("upload u1 was not recorded with this object"))
		}),
	})
	defer stop()
	publish(t, b, "catalog.raw.acme", "m1", `{"forged":true}`)
	var dl []schemas.DeadLetter
	waitFor(t, "dead letter", func() bool { dl = deadLetters(t, b, "guarded"); return len(dl) == 1 })
	d := dl[0]
	if d.Error != "upload u1 was not recorded with this object" || d.Attempts != 1 || string(d.Payload) != `{"forged":true}` {
		t.Errorf("dead letter = %+v", d)
	}
	if d.Source != (schemas.SourcePosition{}) {
		t.Errorf("source position = %+v, want none", d.Source)
	}
	if d.Headers[schemas.HeaderUpload] != "u1" {
		t.Errorf("headers = %v, want what the message claimed", d.Headers)
	}
	waitFor(t, "the dead-letter hook", func() bool { mu.Lock(); defer mu.Unlock(); return len(heard) == 1 })
	mu.Lock()
	if heard[0].Source.Upload != "" {
		t.Errorf("the hook heard of upload %q", heard[0].Source.Upload)
	}
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	if calls.Load() != 1 {
		t.Errorf("refused message handled %d times, want 1", calls.Load())
	}
	if !IsTerminal(Refuse(io.EOF)) || Refuse(nil) != nil {
		t.Error("Refuse is not terminal")
	}
}

func TestRunnerDeadLettersAfterMaxDeliver(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var calls atomic.Int32
	stop := runStage(t, r, Stage{
		Name: "down", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"}, MaxDeliver: 3,
		Backoff: func(uint64) time.Duration { return 20 * time.Millisecond },
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			calls.Add(1)
			return errors.New("connection refused")
		}),
	})
	defer stop()
	publish(t, b, "catalog.raw.acme", "m1", "x")
	var dl []schemas.DeadLetter
	waitFor(t, "dead letter", func() bool { dl = deadLetters(t, b, "down"); return len(dl) == 1 })
	if dl[0].Attempts != 3 || calls.Load() != 3 {
		t.Errorf("attempts = %d, calls = %d, want 3 and 3", dl[0].Attempts, calls.Load())
	}
}

func TestLaterDoesNotCountTowardsDeadLetter(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var calls atomic.Int32
	var ok atomic.Bool
	stop := runStage(t, r, Stage{
		Name: "early", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"}, MaxDeliver: 2,
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			if calls.Add(1) < 5 {
				return Later(errors.New("prerequisites not there yet"), 10*time.Millisecond)
			}
			ok.Store(true)
			return nil
		}),
	})
	defer stop()
	publish(t, b, "catalog.raw.acme", "m1", "x")
	waitFor(t, "fifth attempt", ok.Load)
	if dl := deadLetters(t, b, "early"); len(dl) != 0 {
		t.Errorf("an early message was dead-lettered: %+v", dl)
	}
}

func TestUnavailableBackendPausesTheStageWithoutUsingAttempts(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var down atomic.Bool
	down.Store(true)
	var calls, probes atomic.Int32
	handled := map[string]bool{}
	var mu sync.Mutex
	stop := runStage(t, r, Stage{
		Name: "sink", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"}, MaxDeliver: 2, BatchSize: 1,
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			calls.Add(1)
			if down.Load() {
				return fmt.Errorf("write: %w", schemas.ErrUnavailable)
			}
			mu.Lock()
			handled[string(m.Data)] = true
			mu.Unlock()
			return nil
		}),
		Gate: func(ctx context.Context) error {
			probes.Add(1)
			if down.Load() {
				return schemas.ErrUnavailable
			}
			return nil
		},
	})
	defer stop()
	for i := range 3 {
		publish(t, b, "catalog.raw.acme", fmt.Sprint("m", i), fmt.Sprint("x", i))
	}
	waitFor(t, "the stage to pause", func() bool { return testutil.ToFloat64(r.metrics.Paused.WithLabelValues("sink")) == 1 })
	waitFor(t, "two probes of the backend", func() bool { return probes.Load() >= 2 })
	// While paused the stage asks the backend, not the messages: only the
	// batch that met the outage was tried.
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times during the outage, want 1", n)
	}
	down.Store(false)
	waitFor(t, "every message after recovery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 3
	})
	if dl := deadLetters(t, b, "sink"); len(dl) != 0 {
		t.Errorf("an outage dead-lettered messages: %+v", dl)
	}
	if v := testutil.ToFloat64(r.metrics.Paused.WithLabelValues("sink")); v != 0 {
		t.Errorf("paused gauge = %v after recovery", v)
	}
	if v := testutil.ToFloat64(r.metrics.Failed.WithLabelValues("sink", "unavailable")); v != 1 {
		t.Errorf("unavailable failures = %v, want 1", v)
	}
}

func TestLingerGathersTricklingMessagesIntoOneBatch(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var mu sync.Mutex
	var sizes []int
	stop := runStage(t, r, Stage{
		Name: "sink", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"}, BatchSize: 100, Linger: 2 * time.Second,
		Handle: func(ctx context.Context, msgs []*Message) []error {
			mu.Lock()
			sizes = append(sizes, len(msgs))
			mu.Unlock()
			return nil
		},
	})
	defer stop()
	for i := range 5 {
		publish(t, b, "catalog.raw.acme", fmt.Sprint("m", i), "x")
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, "a batch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sizes) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 1 || sizes[0] != 5 {
		t.Errorf("batch sizes %v, want one batch of 5", sizes)
	}
}

// A message larger than a fetch's byte budget still reaches the stage, and
// the small ones around it come in batches.
func TestAMessageLargerThanAFetchIsStillHandled(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var mu sync.Mutex
	var got []int
	stop := runStage(t, r, Stage{
		Name: "sink", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"}, BatchSize: 8, MaxBytes: 4 << 10,
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			mu.Lock()
			got = append(got, len(m.Data))
			mu.Unlock()
			return nil
		}),
	})
	defer stop()
	publish(t, b, "catalog.raw.acme", "small-1", "x")
	publish(t, b, "catalog.raw.acme", "large", strings.Repeat("x", 64<<10))
	publish(t, b, "catalog.raw.acme", "small-2", "x")
	waitFor(t, "all three messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	mu.Lock()
	defer mu.Unlock()
	if got[1] != 64<<10 {
		t.Errorf("handled sizes %v, want the large one second", got)
	}
}

func TestPublishWithSameMsgIDIsStoredOnce(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	pub := b.Publisher()
	ctx := context.Background()
	s1, err := pub.Publish(ctx, Outgoing{Subject: "catalog.raw.acme", MsgID: "raw:u1:0", Data: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := pub.Publish(ctx, Outgoing{Subject: "catalog.raw.acme", MsgID: "raw:u1:0", Data: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 {
		t.Errorf("republish stored a second copy: seq %d and %d", s1, s2)
	}
	f := pub.Flight(4)
	for i := 0; i < 20; i++ {
		if err := f.Publish(ctx, Outgoing{Subject: "catalog.raw.acme", MsgID: fmt.Sprintf("raw:u2:%d", i%10), Data: []byte("b")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := b.Replay(ctx, streamRaw, "", func(*Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != 11 {
		t.Errorf("stream holds %d messages, want 11 (1 + 10 distinct ids)", n)
	}
}

func TestAnEventIsPublishedWithItsSubjectIDAndMetadata(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	pub := b.Publisher()
	ctx := context.Background()
	ev := &schemas.RawBatch{Upload: "u1", Partner: "acme", Batch: 2, Rows: []schemas.RawRow{{Row: 2001, Values: []string{"SKU-1"}}}}
	for range 2 { // the second is a duplicate within the window
		if _, err := Publish(ctx, pub, ev); err != nil {
			t.Fatal(err)
		}
	}
	var got []*Message
	if _, err := b.Replay(ctx, streamRaw, "", func(m *Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(got))
	}
	m := got[0]
	var decoded schemas.RawBatch
	if err := schemas.UnmarshalRawBatch(m.Data, &decoded); err != nil || decoded.Rows[0].Values[0] != "SKU-1" {
		t.Errorf("payload %q decodes as %+v (%v)", m.Data, decoded, err)
	}
	want := schemas.SourcePosition{Partner: "acme", Upload: "u1", Row: 2001, Batch: 2}
	if m.Subject != "catalog.raw.acme.u1" || m.Source() != want {
		t.Errorf("message on %s from %+v, want catalog.raw.acme.u1 from %+v (metadata %v)", m.Subject, m.Source(), want, m.Metadata)
	}
}

func TestDeclareIsIdempotentAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	b := testBus(t, dir)
	ctx := context.Background()
	publish(t, b, "catalog.product.acme", "p1", "kept")
	before, err := b.js.Stream(ctx, streamProducts)
	if err != nil {
		t.Fatal(err)
	}
	created := before.CachedInfo().Created
	b.Close()

	b = testBus(t, dir) // Declare runs again on the same data
	defer b.Close()
	after, err := b.js.Stream(ctx, streamProducts)
	if err != nil {
		t.Fatal(err)
	}
	info := after.CachedInfo()
	if !info.Created.Equal(created) || info.State.Msgs != 1 {
		t.Errorf("second start changed the stream: created %v→%v, msgs %d", created, info.Created, info.State.Msgs)
	}
	// Every stream of the topology is there; only buckets read in batches
	// answer from any replica.
	for _, name := range testTopology().StreamNames() {
		st, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		if direct, want := st.CachedInfo().Config.AllowDirect, name == "KV_reads"; direct != want {
			t.Errorf("stream %s allows reads from any replica: %v, want %v", name, direct, want)
		}
	}
}

func TestStopFinishesTheBatchInHandAndRestartContinues(t *testing.T) {
	dir := t.TempDir()
	b := testBus(t, dir)
	for i := 0; i < 50; i++ {
		publish(t, b, "catalog.raw.acme", fmt.Sprint("m", i), fmt.Sprint(i))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	stage := func() Stage {
		return Stage{Name: "drain", Stream: streamRaw, BatchSize: 5, Handle: PerMessage(func(ctx context.Context, m *Message) error {
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			seen[string(m.Data)]++
			mu.Unlock()
			return nil
		})}
	}
	r := quietRunner(b)
	stop := runStage(t, r, stage())
	waitFor(t, "some progress", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 10 })
	stop()
	b.Close()

	b = testBus(t, dir)
	defer b.Close()
	stop = runStage(t, quietRunner(b), stage())
	defer stop()
	waitFor(t, "all 50 messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 50 })
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %s handled %d times after a clean stop, want 1", k, n)
		}
	}
}

func TestExponentialBackoff(t *testing.T) {
	f := ExponentialBackoff(time.Second, 5*time.Second)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := f(uint64(i + 1)); got != w {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w)
		}
	}
}

func TestConcurrentByKeyKeepsOrderPerKeyAndRunsKeysAtOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{}
	var running, most atomic.Int32
	h := func(_ context.Context, m *Message) error {
		n := running.Add(1)
		for {
			old := most.Load()
			if n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		if string(m.Data) == "b2" {
			return errors.New("b2 fails")
		}
		mu.Lock()
		seen[m.Subject] = append(seen[m.Subject], string(m.Data))
		mu.Unlock()
		return nil
	}
	var msgs []*Message
	for i := 1; i <= 3; i++ {
		for _, k := range []string{"a", "b", "c", "d"} {
			msgs = append(msgs, &Message{Subject: k, Data: []byte(fmt.Sprint(k, i))})
		}
	}
	errs := ConcurrentByKey(h, 4, func(m *Message) string { return m.Subject })(context.Background(), msgs)
	for _, k := range []string{"a", "c", "d"} {
		want := []string{k + "1", k + "2", k + "3"}
		if fmt.Sprint(seen[k]) != fmt.Sprint(want) {
			t.Errorf("key %s handled in order %v, want %v", k, seen[k], want)
		}
	}
	if fmt.Sprint(seen["b"]) != "[b1]" {
		t.Errorf("key b: %v, want only b1 before the failure", seen["b"])
	}
	for i, m := range msgs {
		switch string(m.Data) {
		case "b2":
			if errs[i] == nil || errors.As(errs[i], new(laterError)) {
				t.Errorf("b2: %v, want its own failure", errs[i])
			}
		case "b3":
			if !errors.As(errs[i], new(laterError)) {
				t.Errorf("b3 after a failed b2: %v, want a Later", errs[i])
			}
		default:
			if errs[i] != nil {
				t.Errorf("%s: %v", m.Data, errs[i])
			}
		}
	}
	if most.Load() < 2 {
		t.Errorf("at most %d keys ran at once", most.Load())
	}
}

// TestStageCountsItemsAndMessagesOut: what a handler publishes with its
// context counts as the stage's messages out, one publish and one flight
// alike, its dead letters not; the items it reports count by outcome; and
// a stage's series exist from its start.
func TestStageCountsItemsAndMessagesOut(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	pub := b.Publisher()
	var handled atomic.Bool
	stop := runStage(t, r, Stage{
		Name: "counting", Stream: streamRaw, Subjects: []string{"catalog.raw.acme"},
		Handle: PerMessage(func(ctx context.Context, m *Message) error {
			if _, err := pub.Publish(ctx, Outgoing{Subject: "catalog.product.acme", MsgID: "p1", Data: m.Data}); err != nil {
				return err
			}
			f := pub.Flight(4)
			for i := range 3 {
				if err := f.Publish(ctx, Outgoing{Subject: "catalog.product.acme", MsgID: fmt.Sprint("f", i), Data: m.Data}); err != nil {
					return err
				}
			}
			if err := f.Wait(ctx); err != nil {
				return err
			}
			if err := r.PublishDeadLetter(ctx, schemas.DeadLetter{Stage: "counting", Error: "one item refused"}, "dl1"); err != nil {
				return err
			}
			CountItems(ctx, "read", 5)
			CountItems(ctx, "rejected", 2)
			handled.Store(true)
			return nil
		}),
	})
	defer stop()
	waitFor(t, "the stage's series", func() bool {
		return testutil.CollectAndCount(r.metrics.Failed, "feedline_stage_messages_failed_total") == 3 &&
			testutil.CollectAndCount(r.metrics.Paused, "feedline_stage_paused") == 1
	})
	if n := testutil.CollectAndCount(r.metrics.Published, "feedline_stage_messages_out_total"); n != 1 {
		t.Errorf("%d out series before the first message, want the stage's at 0", n)
	}
	publish(t, b, "catalog.raw.acme", "m1", "payload")
	waitFor(t, "the message handled", handled.Load)
	waitFor(t, "the message acknowledged", func() bool {
		return testutil.ToFloat64(r.metrics.Processed.WithLabelValues("counting")) == 1
	})
	stop()
	if got := testutil.ToFloat64(r.metrics.Published.WithLabelValues("counting")); got != 4 {
		t.Errorf("messages out %v, want 4 (one publish, three in a flight, no dead letter)", got)
	}
	for outcome, want := range map[string]float64{"read": 5, "rejected": 2} {
		if got := testutil.ToFloat64(r.metrics.Items.WithLabelValues("counting", outcome)); got != want {
			t.Errorf("items %s %v, want %v", outcome, got, want)
		}
	}
	// Outside a stage nothing is counted.
	CountItems(context.Background(), "read", 7)
	if _, err := pub.Publish(context.Background(), Outgoing{Subject: "catalog.product.acme", MsgID: "outside", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(r.metrics.Published.WithLabelValues("counting")); got != 4 {
		t.Errorf("a publish outside the stage counted: %v", got)
	}
}

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNakAndTermFailuresAreLogged: a redelivery request or a termination
// that does not reach the server is logged, as a failed ack is, rather
// than dropped; the message then comes back after its ack wait.
func TestNakAndTermFailuresAreLogged(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	r, err := NewRunner(b, NewMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	s := Stage{Name: "settling", Stream: streamRaw}
	s.defaults()
	out := newOutage(s.Name, nil, func(bool) {})
	// A message whose subscription is gone cannot be settled.
	unbound := func(seq uint64) *Message {
		return &Message{Subject: "catalog.raw.acme", Data: []byte("x"), Metadata: Metadata{}, Sequence: seq, Delivered: 1, msg: &nats.Msg{Subject: "catalog.raw.acme"}}
	}
	r.settle(s, unbound(1), errors.New("sink timed out"), false, out, log)
	r.settle(s, unbound(2), Terminal(errors.New("not a raw batch")), false, out, log)
	type logLine struct {
		Msg string
		Seq uint64
		Err string
	}
	var lines []logLine
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var line logLine
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, line)
	}
	logged := func(msg string, seq uint64) bool {
		for _, l := range lines {
			if strings.HasPrefix(l.Msg, msg) && l.Seq == seq && l.Err != "" {
				return true
			}
		}
		return false
	}
	if !logged("nak failed", 1) {
		t.Errorf("the failed nak of a retried message is not logged: %s", logs)
	}
	if !logged("message dead-lettered", 2) || !logged("term failed", 2) {
		t.Errorf("the failed term of a dead-lettered message is not logged: %s", logs)
	}
	if d := deadLetters(t, b, "settling"); len(d) != 1 || d[0].Sequence != 2 {
		t.Errorf("dead letters %+v, want the one of sequence 2", d)
	}
}

// TestConcurrentWithoutWorkersHandlesEveryMessage: asking for no workers
// gets one, not a batch that waits forever.
func TestConcurrentWithoutWorkersHandlesEveryMessage(t *testing.T) {
	msgs := []*Message{{Subject: "a", Data: []byte("1")}, {Subject: "b", Data: []byte("2")}, {Subject: "a", Data: []byte("3")}}
	for name, handle := range map[string]func(Handler) BatchHandler{
		"Concurrent": func(h Handler) BatchHandler { return Concurrent(h, 0) },
		"ConcurrentByKey": func(h Handler) BatchHandler {
			return ConcurrentByKey(h, -1, func(m *Message) string { return m.Subject })
		},
	} {
		t.Run(name, func(t *testing.T) {
			var handled atomic.Int32
			done := make(chan []error, 1)
			go func() {
				done <- handle(func(context.Context, *Message) error { handled.Add(1); return nil })(t.Context(), msgs)
			}()
			select {
			case errs := <-done:
				if handled.Load() != int32(len(msgs)) || len(errs) != len(msgs) {
					t.Errorf("handled %d of %d messages, %d results", handled.Load(), len(msgs), len(errs))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the batch was not handled in 10 s")
			}
		})
	}
}

// TestRunnerWithoutNewRunnerSaysSo: a zero Runner answers an error naming
// NewRunner instead of panicking, and NewRunner refuses what it cannot run
// on, naming what is missing.
func TestRunnerWithoutNewRunnerSaysSo(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	for _, tc := range []struct {
		name string
		bus  *Bus
		m    *Metrics
		log  *slog.Logger
		want string
	}{
		{"no bus", nil, NewMetrics(), slog.New(slog.DiscardHandler), "an open Bus"},
		{"no metrics", b, nil, slog.New(slog.DiscardHandler), "Metrics"},
		{"no logger", b, NewMetrics(), nil, "a logger"},
	} {
		if r, err := NewRunner(tc.bus, tc.m, tc.log); err == nil || r != nil || !strings.Contains(err.Error(), "NewRunner") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, %v; want an error naming NewRunner and %q", tc.name, r, err, tc.want)
		}
	}
	for name, r := range map[string]*Runner{"zero": {}} {
		t.Run(name, func(t *testing.T) {
			if err := r.Run(t.Context(), Stage{Name: "x", Stream: streamRaw, Handle: PerMessage(func(context.Context, *Message) error { return nil })}); err == nil || !strings.Contains(err.Error(), "NewRunner") {
				t.Errorf("Run: %v", err)
			}
			if _, err := r.Consumer(t.Context(), Stage{Name: "x", Stream: streamRaw}); err == nil || !strings.Contains(err.Error(), "NewRunner") {
				t.Errorf("Consumer: %v", err)
			}
			if err := r.PublishDeadLetter(t.Context(), schemas.DeadLetter{Stage: "x"}, "id"); err == nil || !strings.Contains(err.Error(), "NewRunner") {
				t.Errorf("PublishDeadLetter: %v", err)
			}
			if b := r.Bound(); len(b) != 0 {
				t.Errorf("Bound: %v", b)
			}
		})
	}
}

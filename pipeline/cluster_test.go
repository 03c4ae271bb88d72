package pipeline

// The runtime on a real three-node JetStream cluster (pipeline/natstest):
// streams and consumers at R3, as compose.yaml deploys them.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"feedline/pipeline/natstest"
)

// clusterBus signs in to c as admin, with streams at R3.
func clusterBus(t *testing.T, c *natstest.Cluster, log *slog.Logger) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := Connect(ctx, BusConfig{URL: c.URLs(), Auth: ClientAuth{User: "admin", Password: c.Password("admin")}, Replicas: 3, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// testStream declares an R3 stream of the test's own, removed afterwards.
func testStream(t *testing.T, b *Bus) (name, subject string) {
	t.Helper()
	id := strings.ToUpper(ulid.Make().String())
	name, subject = "TEST_"+id, "test."+strings.ToLower(id)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject + ".>"}, Storage: jetstream.FileStorage, Replicas: 3,
		Duplicates: testDuplicates, MaxMsgSize: MaxPayload,
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.js.DeleteStream(ctx, name)
	})
	return name, subject
}

// deliveries records what a stage handled: the first delivery of each
// stream sequence, and any delivery after the first.
type deliveries struct {
	mu      sync.Mutex
	seen    map[uint64]bool
	repeats []string
}

func (d *deliveries) handle(_ context.Context, m *Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[m.Sequence] || m.Delivered > 1 {
		d.repeats = append(d.repeats, fmt.Sprintf("seq %d delivery %d", m.Sequence, m.Delivered))
	}
	d.seen[m.Sequence] = true
	return nil
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

func waitLong(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Every message reaches the stages of an R3 consumer once, in batches cut
// by count and by bytes. On a cluster the server sends "409 Batch
// Completed" and "409 Message Size Exceeds MaxBytes" before the messages
// that precede them; with jetstream's Fetch a stage then never got one.
func TestStagesTakeEveryMessageOnceFromAReplicatedConsumer(t *testing.T) {
	c := natstest.Shared(t)
	b := clusterBus(t, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stream, subject := testStream(t, b)
	const total = 240
	big := bytes.Repeat([]byte("x"), 700<<10)
	pub := b.Publisher()
	for i := range total {
		data := []byte(fmt.Sprintf(`{"n":%d}`, i))
		if i%10 == 0 {
			data = big // some batches end on bytes, some on count
		}
		if _, err := pub.Publish(t.Context(), Outgoing{Subject: subject + ".m", MsgID: fmt.Sprint(i), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	stages := []Stage{
		{Name: "batches", BatchSize: 16, MaxBytes: 2 << 20},
		{Name: "one-by-one", BatchSize: 1},
		{Name: "lingering", BatchSize: 64, MaxBytes: 4 << 20, Linger: 300 * time.Millisecond, MaxWait: 2 * time.Second},
	}
	r := quietRunner(b)
	got := map[string]*deliveries{}
	for _, s := range stages {
		d := &deliveries{seen: map[uint64]bool{}}
		got[s.Name] = d
		s.Stream, s.Handle = stream, PerMessage(d.handle)
		stop := runStage(t, r, s)
		defer stop()
	}
	for _, s := range stages {
		d := got[s.Name]
		waitLong(t, fmt.Sprintf("stage %s to take all %d messages (it has %d)", s.Name, total, d.count()), 90*time.Second, func() bool { return d.count() == total })
		if len(d.repeats) > 0 {
			t.Errorf("stage %s got messages again, so their first delivery was lost: %v", s.Name, d.repeats)
		}
	}
}

// A stage and its publishers keep going while the node leading the stage's
// consumer is killed, and after it comes back: nothing published is lost
// or stored twice, every message is handled, and a follower of the stream
// sees all of it in order.
func TestStagesRideOutANATSNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a NATS node")
	}
	c := natstest.Start(t)
	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Log(logs.String())
			logMu.Unlock()
		}
	})
	b := clusterBus(t, c, log)
	_, admin := c.Admin()
	stream, subject := testStream(t, b)

	d := &deliveries{seen: map[uint64]bool{}}
	var handled atomic.Int64
	stage := Stage{Name: "survivor", Stream: stream, BatchSize: 16, Handle: PerMessage(func(ctx context.Context, m *Message) error {
		handled.Add(1)
		time.Sleep(time.Millisecond) // in flight when the node goes
		return d.handle(ctx, m)
	})}
	r, err := NewRunner(b, NewMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	stop := runStage(t, r, stage)
	defer stop()

	followed := make(chan uint64, 10_000)
	fctx, cancelFollow := context.WithCancel(t.Context())
	defer cancelFollow()
	go func() { _ = b.Follow(fctx, stream, 1, func(m *Message) { followed <- m.Sequence }) }()

	const first, second = 1500, 200
	pub := b.Publisher()
	publishAll := func(from, n int) <-chan error {
		errs := make(chan error, 1)
		go func() {
			flight := pub.Flight(32)
			for i := from; i < from+n; i++ {
				out := Outgoing{Subject: subject + ".m", MsgID: fmt.Sprint(i), Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
				var err error
				if i%2 == 0 {
					_, err = pub.Publish(t.Context(), out)
				} else {
					err = flight.Publish(t.Context(), out)
				}
				if err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
			errs <- flight.Wait(t.Context())
		}()
		return errs
	}
	published := publishAll(0, first)
	waitLong(t, "the stage to be under way", 60*time.Second, func() bool { return handled.Load() >= 300 })
	leader, err := c.ConsumerLeader(t.Context(), admin, stream, stage.Name)
	if err != nil {
		t.Fatal(err)
	}
	killed := c.Node(leader)
	c.Kill(killed)
	t.Logf("killed %s, the leader of consumer %s, after %d messages", leader, stage.Name, handled.Load())
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publishing while a node was down: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("publishing did not finish within 2 minutes of the node loss")
	}
	waitLong(t, fmt.Sprintf("all %d messages handled with a node down (have %d)", first, d.count()), 2*time.Minute, func() bool { return d.count() == first })

	c.Restart(killed)
	if err := <-publishAll(first, second); err != nil {
		t.Fatalf("publishing after the node came back: %v", err)
	}
	waitLong(t, "the messages published after the restart", time.Minute, func() bool { return d.count() == first+second })

	st, err := admin.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != first+second {
		t.Errorf("the stream holds %d messages, want %d: a retried publish was stored twice or one was lost", info.State.Msgs, first+second)
	}
	// The follower saw every message once, in order.
	var next uint64 = 1
	timeout := time.After(time.Minute)
	for next <= first+second {
		select {
		case seq := <-followed:
			if seq != next {
				t.Fatalf("the follower got sequence %d, want %d", seq, next)
			}
			next++
		case <-timeout:
			t.Fatalf("the follower stopped at sequence %d of %d", next-1, first+second)
		}
	}
	// And a replay reads the whole stream.
	n, err := b.Replay(t.Context(), stream, "", func(*Message) error { return nil })
	if err != nil || n != first+second {
		t.Errorf("replay after the node loss: %d messages, %v; want %d", n, err, first+second)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "dead-letter") {
		t.Errorf("messages were dead-lettered:\n%s", logs.String())
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A follower of a stream keeps receiving when the node that serves its
// ordered consumer stops answering (frozen with SIGSTOP: its connections
// stay open, so nobody sees it gone). nats.go then asks again for a
// consumer of the same name, which stays on the frozen node: without
// starting afresh under another name the follower hangs until the node
// comes back.
func TestFollowRidesOutANodeThatStopsAnswering(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes a NATS node")
	}
	c := natstest.Start(t)
	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, admin := c.Admin()
	// The follower's client never talks to the node to be frozen, node 3.
	const frozen = 2
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := Connect(ctx, BusConfig{URL: c.URLsExcept(frozen), Auth: ClientAuth{User: "admin", Password: c.Password("admin")}, Replicas: 3, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	stream, subject := testStream(t, b)
	pub := b.Publisher()
	publishN := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if _, err := pub.Publish(t.Context(), Outgoing{Subject: subject + ".m", MsgID: fmt.Sprint(i), Data: []byte("x")}); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	publishN(0, 100)
	// Followers until one is served by the node to be frozen.
	var last atomic.Uint64
	for attempt := 0; ; attempt++ {
		if attempt == 30 {
			t.Fatal("30 followers and none was served by node 3")
		}
		last.Store(0)
		fctx, stop := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.Follow(fctx, stream, 1, func(m *Message) { last.Store(m.Sequence) })
		}()
		waitLong(t, "the follower to read the first 100", 30*time.Second, func() bool { return last.Load() == 100 })
		host := ""
		st, err := admin.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		for ci := range st.ListConsumers(t.Context()).Info() {
			if ci.Cluster != nil && ci.Cluster.Leader == fmt.Sprintf("nats-%d", frozen+1) && ci.NumPending == 0 && ci.Delivered.Stream == 100 {
				host = ci.Cluster.Leader
			}
		}
		if host != "" {
			defer func() { stop(); <-done }()
			break
		}
		stop()
		<-done
	}
	c.Freeze(frozen)
	publishN(100, 100)
	waitLong(t, "the follower to read all 200 while node 3 answers nothing", 90*time.Second, func() bool { return last.Load() == 200 })
	logMu.Lock()
	defer logMu.Unlock()
	t.Logf("the follower started afresh %d times", strings.Count(logs.String(), "starting again where it stopped"))
}

package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"feedline/schemas"
)

// A dead-lettered message goes back once, after the fix, to the stage that
// gave up on it alone; a second replay finds nothing; an entry for one item
// of a handled message stays.
func TestReplayDeadLettersSendsEachBackOnceToItsStage(t *testing.T) {
	b := testBus(t, t.TempDir())
	defer b.Close()
	r := quietRunner(b)
	var fixed atomic.Bool
	var mu sync.Mutex
	var handled, others []string
	flaky := Stage{Name: "flaky", Stream: streamRaw, Handle: PerMessage(func(_ context.Context, m *Message) error {
		if !fixed.Load() {
			return Terminal(errors.New("cannot handle it yet"))
		}
		mu.Lock()
		handled = append(handled, string(m.Data)+"@"+m.Source().Upload)
		mu.Unlock()
		return nil
	})}
	other := Stage{Name: "other", Stream: streamRaw, Handle: PerMessage(func(_ context.Context, m *Message) error {
		mu.Lock()
		others = append(others, string(m.Data))
		mu.Unlock()
		return nil
	})}
	defer runStage(t, r, flaky)()
	defer runStage(t, r, other)()

	publish(t, b, "catalog.raw.acme", "m1", "one")
	publish(t, b, "catalog.raw.acme", "m2", "two")
	waitFor(t, "two dead letters", func() bool { return len(deadLetters(t, b, "flaky")) == 2 })
	item := schemas.DeadLetter{Stage: "flaky", Subject: "catalog.raw.acme", Error: "one product refused", Payload: []byte(`{}`)}
	if err := r.PublishDeadLetter(context.Background(), item, "dlq:flaky:item"); err != nil {
		t.Fatal(err)
	}

	fixed.Store(true)
	res, err := b.ReplayDeadLetters(context.Background(), streamDLQ, "flaky")
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || res.Kept != 1 {
		t.Errorf("replay: %+v, want 2 replayed and the item's entry kept", res)
	}
	waitFor(t, "the fixed stage handles both", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 2
	})
	if handled[0] != "one@u1" && handled[1] != "one@u1" {
		t.Errorf("handled %v: the replay lost the metadata", handled)
	}
	if left := deadLetters(t, b, "flaky"); len(left) != 1 || left[0].Sequence != 0 {
		t.Errorf("dead letters left: %+v, want the item's alone", left)
	}
	again, err := b.ReplayDeadLetters(context.Background(), streamDLQ, "flaky")
	if err != nil || again.Replayed != 0 {
		t.Errorf("a second replay: %+v %v, want nothing sent", again, err)
	}
	// The other stage acknowledged the replayed copies without handling them.
	waitFor(t, "the other stage to settle the copies", func() bool {
		st, err := b.JetStream().Consumer(context.Background(), streamRaw, "other")
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(others) != 2 {
		t.Errorf("the other stage handled %v, want each original once", others)
	}
	if n := len(handled); n != 2 {
		t.Errorf("the fixed stage handled %d, want 2", n)
	}
}

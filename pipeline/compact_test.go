package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Deleting a message twice succeeds both times; reading it then says it
// is gone; the floor is the slowest durable consumer's, ordered readers
// aside.
func TestDeleteMessageAndConsumedFloor(t *testing.T) {
	t.Parallel()
	b := testBus(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := b.Publisher()
	for i := range 4 {
		if _, err := pub.Publish(ctx, Outgoing{Subject: "catalog.product.acme", MsgID: string(rune('a' + i)), Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := b.ConsumedFloor(ctx, streamProducts); err != nil || ok {
		t.Fatalf("a stream no stage reads has a floor (%v, %v)", ok, err)
	}
	for range 2 {
		if err := b.DeleteMessage(ctx, streamProducts, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.MessageAt(ctx, streamProducts, 2); !errors.Is(err, ErrMessageGone) {
		t.Fatalf("reading a deleted message: %v", err)
	}
	msgs, _, err := b.StreamSize(ctx, streamProducts)
	if err != nil || msgs != 3 {
		t.Fatalf("the stream holds %d messages (%v), want 3", msgs, err)
	}
	r := quietRunner(b)
	if _, err := r.Consumer(ctx, Stage{Name: "behind", Stream: streamProducts, Handle: PerMessage(func(context.Context, *Message) error { return nil })}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.ReplayFrom(ctx, streamProducts, "", 1, func(*Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	floor, ok, err := b.ConsumedFloor(ctx, streamProducts)
	if err != nil || !ok || floor != 0 {
		t.Fatalf("floor %d (%v, %v), want 0: the stage has read nothing", floor, ok, err)
	}
}

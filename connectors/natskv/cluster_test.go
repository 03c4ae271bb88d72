package natskv

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"feedline/pipeline/natstest"
	"feedline/schemas"
)

// Stages note progress on an upload at once, each with compare-and-set. On
// a replicated (R3) bucket a lost race is reported with another error code
// than on a single node; it must be retried there too, not fail the batch.
func TestLedgerUpdatesRaceOnAReplicatedBucket(t *testing.T) {
	t.Parallel()
	c := natstest.Shared(t)
	_, js := c.Admin()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	bucket := "test_" + strings.ToLower(ulid.Make().String())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Storage: jetstream.FileStorage, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, bucket)
	})
	l := Ledger{KV: kv}
	const batches = 24
	var wg sync.WaitGroup
	errs := make(chan error, batches)
	for n := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.RecordNormalise(ctx, "u1", n, schemas.NormaliseRecord{Read: 10, Accepted: 9, Rejected: 1})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent progress note failed: %v", err)
		}
	}
	var tally normaliseTally
	if err := getJSON(ctx, kv, "u1.n", &tally); err != nil {
		t.Fatal(err)
	}
	if got := tally.Totals; got.Batches != batches || got.Read != 10*batches || got.Accepted != 9*batches || got.Rejected != batches {
		t.Errorf("totals %+v, want %d batches of 10 rows", got, batches)
	}
}

package normalise

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// partnerLog writes a partner's full uploads to the product log as
// normalise workers do: changed products in batches with the ones listed
// unchanged, the deletions of products not listed, then the run summary.
type partnerLog struct {
	bus    *pipeline.Bus
	rnd    *rand.Rand
	prices map[int]int64 // live products by number
	next   int
	// batch is how many rows a batch holds; changed is the percentage of
	// products a re-upload changes, goneMille the per mille it drops,
	// added how many new products it brings.
	batch, changed, goneMille, added int
}

func newPartnerLog(bus *pipeline.Bus, products int) *partnerLog {
	l := &partnerLog{bus: bus, rnd: rand.New(rand.NewPCG(7, 11)), prices: map[int]int64{}, batch: 100, changed: 10, goneMille: 20, added: 3}
	for range products {
		l.prices[l.next] = 10000 + int64(l.next)
		l.next++
	}
	return l
}

// upload publishes upload seq: on a re-upload, a share of the prices
// change, a few products go and a few come. end false leaves the upload
// open, as it is while its batches are still being normalised.
func (l *partnerLog) upload(t testing.TB, ctx context.Context, seq uint64, first bool, end bool) {
	t.Helper()
	if err := l.tryUpload(ctx, seq, first, end); err != nil {
		t.Fatal(err)
	}
}

func (l *partnerLog) tryUpload(ctx context.Context, seq uint64, first bool, end bool) error {
	ids := slices.Sorted(func(yield func(int) bool) {
		for n := range l.prices {
			if !yield(n) {
				return
			}
		}
	})
	var gone []int
	changed := map[int]*schemas.PriceChange{}
	added := map[int]bool{}
	if !first {
		for _, n := range ids {
			switch r := l.rnd.IntN(1000); {
			case r < l.goneMille:
				gone = append(gone, n)
			case r < l.goneMille+10*l.changed:
				old := l.prices[n]
				l.prices[n] = old + int64(l.rnd.IntN(2001)) - 1000
				changed[n] = &schemas.PriceChange{Old: old, New: l.prices[n], Currency: "KRW"}
			}
		}
		for _, n := range gone {
			delete(l.prices, n)
		}
		for range l.added {
			l.prices[l.next] = 10000 + int64(l.next)
			added[l.next] = true
			l.next++
		}
		ids = slices.Sorted(func(yield func(int) bool) {
			for n := range l.prices {
				if !yield(n) {
					return
				}
			}
		})
	}
	upload := fmt.Sprint("u", seq)
	batchNo := 0
	var err error
	publish := func(b *schemas.ProductBatch) {
		if err == nil {
			_, err = pipeline.Publish(ctx, l.bus.Publisher(), b)
		}
	}
	for start := 0; start < len(ids); start += l.batch {
		b := &schemas.ProductBatch{Upload: upload, Partner: "acme", Batch: batchNo, Seq: seq, At: time.Now().UTC()}
		batchNo++
		for i, n := range ids[start:min(start+l.batch, len(ids))] {
			id := fmt.Sprintf("acme:%d", n)
			if first || changed[n] != nil || added[n] {
				b.Changes = append(b.Changes, schemas.ProductChange{Kind: schemas.ChangeUpsert, ID: id, Version: seq<<32 | uint64(start+i+1),
					New: first || added[n], Price: changed[n], Product: &schemas.Product{
						ID: id, Partner: "acme", SKU: fmt.Sprint(n), Title: fmt.Sprint("Stainless electric kettle 1.7 l, model ", n), Brand: "Acme",
						Category: []string{"Home", "Kitchen", "Kettles"}, Price: l.prices[n], Currency: "KRW", Availability: schemas.InStock,
						URL: fmt.Sprint("https://shop.example/p/", n), Version: seq<<32 | uint64(start+i+1),
					}})
				continue
			}
			b.Seen = append(b.Seen, id)
		}
		publish(b)
	}
	if !end {
		return err
	}
	if len(gone) > 0 {
		b := &schemas.ProductBatch{Upload: upload, Partner: "acme", Batch: batchNo, Seq: seq, At: time.Now().UTC()}
		for _, n := range gone {
			b.Changes = append(b.Changes, schemas.ProductChange{Kind: schemas.ChangeDelete, ID: fmt.Sprintf("acme:%d", n), Version: seq<<32 | deleteRow})
		}
		publish(b)
	}
	publish(&schemas.ProductBatch{Upload: upload, Partner: "acme", Batch: -1, Seq: seq, At: time.Now().UTC(), End: &schemas.UploadRun{Upload: upload, Partner: "acme"}})
	return err
}

// reader is a durable consumer of the product log that has acknowledged
// every message up to upTo, as a stage that finished them has.
func reader(t testing.TB, ctx context.Context, bus *pipeline.Bus, name string, upTo uint64) {
	t.Helper()
	cons, err := bus.JetStream().CreateOrUpdateConsumer(ctx, topology.StreamProducts, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream >= upTo {
			return
		}
		msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range msgs.Messages() {
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.Sequence.Stream > upTo {
				return // left unacknowledged: the reader is behind
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// compactor is a normalise worker that follows the log and compacts it.
func compactor(t testing.TB, ctx context.Context, bus *pipeline.Bus, logs *logBuffer) *Stage {
	t.Helper()
	s := rebuilt(t, ctx, bus, "", logs)
	s.Pub = bus.Publisher()
	s.Follow(ctx)
	return s
}

// caughtUpWith waits until s has folded everything on the log.
func caughtUpWith(t testing.TB, ctx context.Context, s *Stage) {
	t.Helper()
	for {
		last, err := s.bus.LastSequence(ctx, topology.StreamProducts)
		if err != nil {
			t.Fatal(err)
		}
		if s.applied.Load() >= last {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the worker folded up to %d of %d", s.applied.Load(), last)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func streamSize(t testing.TB, ctx context.Context, bus *pipeline.Bus) (uint64, uint64) {
	t.Helper()
	msgs, bytes, err := bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	return msgs, bytes
}

// TestCompactionRebuildsTheSameCatalog: after ten re-uploads with changes,
// compaction shrinks the log, and the catalog rebuilt from the compacted
// log equals the running worker's in every field, and detects changes alike.
func TestCompactionRebuildsTheSameCatalog(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	bus := connectTestBus(t, c)
	pl := newPartnerLog(bus, 300)
	for seq := uint64(1); seq <= 11; seq++ {
		pl.upload(t, c, seq, seq == 1, true)
	}
	last, err := bus.LastSequence(c, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	reader(t, c, bus, "index", last)
	logs := &logBuffer{}
	w := compactor(t, c, bus, logs)
	msgs, bytes := streamSize(t, c, bus)
	res, err := w.Compact(c, Compaction{})
	if err != nil {
		t.Fatal(err)
	}
	caughtUpWith(t, c, w)
	afterMsgs, afterBytes := streamSize(t, c, bus)
	if afterMsgs >= msgs || afterBytes >= bytes || res.Removed == 0 {
		t.Fatalf("compaction left %d messages of %d, %d bytes of %d (%+v)", afterMsgs, msgs, afterBytes, bytes, res)
	}
	t.Logf("%d messages, %d bytes → %d messages, %d bytes (%+v)", msgs, bytes, afterMsgs, afterBytes, res)
	if logLine := logs.String(); !strings.Contains(logLine, `msg="product log compacted"`) {
		t.Errorf("no log line for the pass:\n%s", logLine)
	}
	sameCatalog(t, "rebuilt from the compacted log", rebuilt(t, c, bus, "", &logBuffer{}), w)

	// A second pass (or a second worker) finds nothing more to do, and a
	// third worker compacting the same log at once changes nothing.
	again, err := w.Compact(c, Compaction{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := compactor(t, c, bus, &logBuffer{}).Compact(c, Compaction{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Removed != 0 || other.Removed != 0 {
		t.Errorf("passes over a compacted log removed %d and %d batches", again.Removed, other.Removed)
	}
	caughtUpWith(t, c, w)
	sameCatalog(t, "rebuilt after more passes", rebuilt(t, c, bus, "", &logBuffer{}), w)

	// The next upload, normalised by a rebuilt worker, is judged alike.
	pl.upload(t, c, 12, false, true)
	caughtUpWith(t, c, w)
	sameCatalog(t, "after one more upload", rebuilt(t, c, bus, "", &logBuffer{}), w)
}

// TestCompactionLeavesWhatIsNotFinished: a consumer behind, and an upload
// still open, keep their batches; the open upload's changes all survive.
func TestCompactionLeavesWhatIsNotFinished(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	bus := connectTestBus(t, c)
	pl := newPartnerLog(bus, 300)
	for seq := uint64(1); seq <= 6; seq++ {
		pl.upload(t, c, seq, seq == 1, true)
	}
	behind, err := bus.LastSequence(c, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(7); seq <= 10; seq++ {
		pl.upload(t, c, seq, false, true)
	}
	pl.upload(t, c, 11, false, false) // still being normalised
	last, err := bus.LastSequence(c, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	reader(t, c, bus, "index", last)
	reader(t, c, bus, "analytics", behind)
	w := compactor(t, c, bus, &logBuffer{})
	res, err := w.Compact(c, Compaction{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Horizon != behind || res.Removed == 0 {
		t.Fatalf("the pass went to %d, removing %d batches; the slowest reader is at %d", res.Horizon, res.Removed, behind)
	}
	st, err := bus.JetStream().Stream(c, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	for seq := behind + 1; seq <= last; seq++ {
		if _, err := st.GetMsg(c, seq); err != nil {
			t.Errorf("batch %d, after the slowest reader, is gone: %v", seq, err)
		}
	}
	// Everything read: the open upload's batches still stay.
	reader(t, c, bus, "analytics", last)
	if _, err := w.Compact(c, Compaction{}); err != nil {
		t.Fatal(err)
	}
	for seq := last - 2; seq <= last; seq++ {
		m, err := st.GetMsg(c, seq)
		if err != nil {
			t.Fatalf("batch %d of the open upload is gone: %v", seq, err)
		}
		var b schemas.ProductBatch
		if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil || b.Seq != 11 {
			t.Fatalf("batch %d is not of the open upload: %+v %v", seq, b, err)
		}
	}
	caughtUpWith(t, c, w)
	sameCatalog(t, "rebuilt while an upload is open", rebuilt(t, c, bus, "", &logBuffer{}), w)
}

// TestCompactionRacingAnUpload: batches published while a pass runs are
// never lost, and the catalog rebuilt afterwards equals the worker's.
func TestCompactionRacingAnUpload(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	bus := connectTestBus(t, c)
	pl := newPartnerLog(bus, 300)
	for seq := uint64(1); seq <= 8; seq++ {
		pl.upload(t, c, seq, seq == 1, true)
	}
	last, err := bus.LastSequence(c, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	reader(t, c, bus, "index", last)
	w := compactor(t, c, bus, &logBuffer{})
	done := make(chan error, 1)
	go func() {
		for seq := uint64(9); seq <= 11; seq++ {
			if err := pl.tryUpload(c, seq, false, true); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 5 {
		if _, err := w.Compact(c, Compaction{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	caughtUpWith(t, c, w)
	sameCatalog(t, "rebuilt after compacting during uploads", rebuilt(t, c, bus, "", &logBuffer{}), w)
	// Every live product's current version is where the catalog says.
	for id, e := range w.cat.partners["acme"] {
		if e.deleted {
			continue
		}
		b, err := newBusProducts(bus).BatchAt(c, e.at)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !slices.ContainsFunc(b.Changes, func(ch schemas.ProductChange) bool { return ch.ID == id && ch.Version == e.version }) {
			t.Fatalf("%s: batch %d does not hold version %d", id, e.at, e.version)
		}
	}
}

// TestTwoWorkersCompactingAtOnce: two workers compacting the same log at
// the same time leave a log whose rebuild equals both their catalogs.
func TestTwoWorkersCompactingAtOnce(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	bus := connectTestBus(t, c)
	pl := newPartnerLog(bus, 300)
	for seq := uint64(1); seq <= 11; seq++ {
		pl.upload(t, c, seq, seq == 1, true)
	}
	last, err := bus.LastSequence(c, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	reader(t, c, bus, "index", last)
	a, b := compactor(t, c, bus, &logBuffer{}), compactor(t, c, bus, &logBuffer{})
	errs := make(chan error, 2)
	for _, w := range []*Stage{a, b} {
		go func() {
			_, err := w.Compact(c, Compaction{})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The copies both wrote are read by every stage; a second pass each
	// removes the earlier of two copies.
	last, err = bus.LastSequence(c, topology.StreamProducts)
	if err != nil {
		t.Fatal(err)
	}
	reader(t, c, bus, "index", last)
	for _, w := range []*Stage{a, b} {
		caughtUpWith(t, c, w)
		if _, err := w.Compact(c, Compaction{}); err != nil {
			t.Fatal(err)
		}
	}
	caughtUpWith(t, c, a)
	caughtUpWith(t, c, b)
	r := rebuilt(t, c, bus, "", &logBuffer{})
	sameCatalog(t, "rebuilt after two workers compacted (first)", r, a)
	sameCatalog(t, "rebuilt after two workers compacted (second)", r, b)
}

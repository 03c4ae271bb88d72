package elasticsearch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"feedline/connectors/natskv"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/stages/index"
	"feedline/topology"
)

// liveStage is the index stage as feedline runs it (embedded JetStream,
// the runner, the real ledger) writing to an Index on a real node.
type liveStage struct {
	t       *testing.T
	bus     *pipeline.Bus
	runner  *pipeline.Runner
	cons    jetstream.Consumer
	pub     pipeline.JetStreamPublisher
	ledger  natskv.Ledger
	metrics *pipeline.Metrics
}

const liveUpload, livePartner = "u-live", "shop1"

func startIndexStage(t *testing.T, ix schemas.ProductIndex) *liveStage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		bus.Close()
		t.Fatal(err)
	}
	kv, err := bus.KV(ctx, topology.BucketUploads)
	if err != nil {
		bus.Close()
		t.Fatal(err)
	}
	metrics := pipeline.NewMetrics()
	runner, err := pipeline.NewRunner(bus, metrics, quiet)
	if err != nil {
		bus.Close()
		t.Fatal(err)
	}
	ls := &liveStage{t: t, bus: bus, runner: runner, pub: bus.Publisher(), ledger: natskv.Ledger{KV: kv}, metrics: metrics}
	st := &index.Stage{Index: ix, Ledger: ls.ledger, Log: quiet, Writers: 2, DeadLetter: runner.PublishDeadLetter}
	c := st.Config()
	if ls.cons, err = runner.Consumer(ctx, c); err != nil {
		bus.Close()
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := runner.Run(runCtx, c); err != nil {
			t.Errorf("index stage: %v", err)
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		bus.Close()
	})
	return ls
}

// publish puts one product batch of the test upload on PRODUCTS.
func (ls *liveStage) publish(batch int, changes []schemas.ProductChange) {
	ls.t.Helper()
	data, err := json.Marshal(schemas.ProductBatch{Upload: liveUpload, Partner: livePartner, Batch: batch, Changes: changes})
	if err != nil {
		ls.t.Fatal(err)
	}
	out := pipeline.Outgoing{Subject: schemas.Subject(schemas.SubjectProduct, livePartner), MsgID: fmt.Sprintf("%s-%d", liveUpload, batch), Data: data}
	if _, err := ls.pub.Publish(ls.t.Context(), out); err != nil {
		ls.t.Fatalf("publish batch %d: %v", batch, err)
	}
}

// unsettled is how many product batches the stage has not acknowledged.
func (ls *liveStage) unsettled() uint64 {
	ls.t.Helper()
	info, err := ls.cons.Info(ls.t.Context())
	if err != nil {
		ls.t.Fatalf("consumer info: %v", err)
	}
	return info.NumPending + uint64(info.NumAckPending)
}

// waitSettled waits until the stage has acknowledged every batch.
func (ls *liveStage) waitSettled(within time.Duration) {
	ls.t.Helper()
	waitUntil(ls.t, within, "the index stage to settle every batch", func() bool { return ls.unsettled() == 0 })
}

func (ls *liveStage) paused() bool {
	return testutil.ToFloat64(ls.metrics.Paused.WithLabelValues("index")) == 1
}

// deadLetters counts the entries on the dead-letter stream.
func (ls *liveStage) deadLetters() uint64 {
	ls.t.Helper()
	st, err := ls.bus.JetStream().Stream(ls.t.Context(), topology.StreamDLQ)
	if err != nil {
		ls.t.Fatal(err)
	}
	info, err := st.Info(ls.t.Context())
	if err != nil {
		ls.t.Fatal(err)
	}
	return info.State.Msgs
}

// waitUntil polls cond every 100 ms for at most within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// catalog is what the index must hold: per product, the highest version
// sent and whether that change was a delete.
type catalog map[string]schemas.ProductChange

func (c catalog) add(changes []schemas.ProductChange) {
	for _, ch := range changes {
		if cur, ok := c[ch.ID]; !ok || ch.Version > cur.Version {
			c[ch.ID] = ch
		}
	}
}

func (c catalog) live() int {
	n := 0
	for _, ch := range c {
		if ch.Kind != schemas.ChangeDelete {
			n++
		}
	}
	return n
}

// check compares what ix holds with c, reading it with _mget.
func (c catalog) check(t *testing.T, ix *Index) {
	t.Helper()
	ids := make([]string, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	wrong := 0
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		got, err := ix.Products(t.Context(), chunk)
		if err != nil {
			t.Fatalf("Products: %v", err)
		}
		for _, id := range chunk {
			want := c[id]
			p, ok := got[id]
			switch {
			case want.Kind == schemas.ChangeDelete && ok:
				t.Errorf("%s was deleted at version %d but the index holds version %d", id, want.Version, p.Version)
			case want.Kind != schemas.ChangeDelete && (!ok || p.Version != want.Version || p.Title != want.Product.Title):
				t.Errorf("%s: index holds %+v (found %v), want version %d %q", id, p, ok, want.Version, want.Product.Title)
			default:
				continue
			}
			if wrong++; wrong > 10 {
				t.Fatal("more than 10 products differ")
			}
		}
	}
	// A search counts exactly only up to its bound; _count counts them all
	// of the live documents (a delete is a tombstone document).
	var counted struct {
		Count uint64 `json:"count"`
	}
	live := fmt.Sprintf(`{"query":{"term":{%q:false}}}`, FieldDeleted)
	if err := ix.conn.call(t.Context(), esapi.CountRequest{Index: []string{ix.target}, Body: strings.NewReader(live)}, &counted); err != nil {
		t.Fatalf("count: %v", err)
	}
	if counted.Count != uint64(c.live()) {
		t.Errorf("the index holds %d products, want %d", counted.Count, c.live())
	}
	res, err := ix.Search(t.Context(), schemas.SearchRequest{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if wantTotal, wantRel := schemas.BoundedTotal(uint64(c.live())); res.Total != wantTotal || res.TotalRelation != wantRel {
		t.Errorf("a search finds %d (%s) products, want %d (%s)", res.Total, res.TotalRelation, wantTotal, wantRel)
	}
}

// kettles are n upserts of products sku-<from>… at version v.
func kettles(from, n int, v uint64) []schemas.ProductChange {
	out := make([]schemas.ProductChange, n)
	for i := range n {
		p := product(fmt.Sprintf("sku-%06d", from+i), fmt.Sprintf("Kettle %d mark %d", from+i, v))
		out[i] = upsert(p, v)
	}
	return out
}

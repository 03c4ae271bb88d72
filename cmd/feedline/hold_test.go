package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

const simpleMapping = `{"fields": {"id": "id", "title": "title", "price": "price"}, "defaults": {"currency": "KRW"}}`

// simpleFeed lists products id-from..id-to with prices; override changes
// the price cell of some ids.
func simpleFeed(from, to int, override map[int]string) []byte {
	var b bytes.Buffer
	b.WriteString("id,title,price\n")
	for i := from; i <= to; i++ {
		price := fmt.Sprint(1000 + i)
		if p, ok := override[i]; ok {
			price = p
		}
		fmt.Fprintf(&b, "Q%d,Product %d,%s\n", i, i, price)
	}
	return b.Bytes()
}

func (ts *testSystem) catalogIDs(partner string) map[string]string {
	ts.t.Helper()
	out := map[string]string{}
	for id, p := range ts.allProducts(partner) {
		out[id] = fmt.Sprint(p.Price)
	}
	return out
}

// A full feed that lists a row the mapping rejects keeps that product as it
// was, with the issue in the report; a full feed that would delete most of
// the catalog is held with the numbers until the partner confirms or cancels.
func TestFullFeedHoldsMassDeletesAndKeepsRejectedRows(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, simpleMapping)
	first := ts.uploadOK("acme", key, simpleFeed(1, 100, nil), "mode=full")
	if first.State != schemas.StateDone || first.Counts.Accepted != 100 {
		t.Fatalf("first upload: %s %+v", first.State, first.Counts)
	}
	before := ts.catalogIDs("acme")

	t.Run("a rejected row keeps its product", func(t *testing.T) {
		st := ts.uploadOK("acme", key, simpleFeed(1, 100, map[int]string{5: "abc", 7: "1234"}), "mode=full")
		if st.State != schemas.StateDone || st.Counts.Rejected != 1 || st.Counts.Accepted != 1 || st.Counts.Deleted != 0 {
			t.Fatalf("full feed with one rejected row: %s %+v", st.State, st.Counts)
		}
		if len(st.Rejections) != 1 || st.Rejections[0].SourceID != "Q5" || st.Rejections[0].Field != "price" {
			t.Errorf("the report does not attach the issue to Q5: %+v", st.Rejections)
		}
		got := ts.catalogIDs("acme")
		if len(got) != 100 || got["acme:Q5"] != before["acme:Q5"] || got["acme:Q7"] == before["acme:Q7"] {
			t.Errorf("after the feed: %d products, Q5 %s (was %s), Q7 %s (was %s)", len(got), got["acme:Q5"], before["acme:Q5"], got["acme:Q7"], before["acme:Q7"])
		}
		before = got
	})

	t.Run("a feed of a tenth of the catalog is held, then cancelled", func(t *testing.T) {
		st := ts.uploadOK("acme", key, simpleFeed(1, 10, map[int]string{3: "999"}), "mode=full")
		if st.State != schemas.StateHeld || st.Hold == nil || st.Hold.WouldDelete != 90 || st.Hold.Live != 100 || st.Hold.MaxDeletePercent != 30 || st.Hold.Percent != 90 {
			t.Fatalf("a feed of 10 of 100 products: %s %+v", st.State, st.Hold)
		}
		if got := ts.catalogIDs("acme"); !equalCatalogs(got, before) {
			t.Errorf("a held upload changed the catalog: %d products, Q3 %s", len(got), got["acme:Q3"])
		}
		// Only a held upload takes a decision, and only its partner's key.
		other := ts.addPartner("other")
		if r := ts.do("POST", "/v1/uploads/"+st.ID+"/confirm", other, nil, ""); r.Status != 404 {
			t.Errorf("another partner confirmed: %d %s", r.Status, r.Body)
		}
		if r := ts.do("POST", "/v1/uploads/"+first.ID+"/confirm", key, nil, ""); r.Status != 409 || r.problem(t).Title != "Upload not held" {
			t.Errorf("confirming a done upload: %d %s", r.Status, r.Body)
		}
		st = ts.decide(st.ID, key, schemas.DecisionCancel)
		if st.State != schemas.StateCancelled || st.Hold.Decision != schemas.DecisionCancel {
			t.Fatalf("cancelled: %s %+v", st.State, st.Hold)
		}
		if r := ts.do("POST", "/v1/uploads/"+st.ID+"/confirm", key, nil, ""); r.Status != 409 || r.problem(t).Title != "Upload already decided" {
			t.Errorf("confirming a cancelled upload: %d %s", r.Status, r.Body)
		}
		time.Sleep(500 * time.Millisecond) // a wrongly applied cancel would show by now
		if got := ts.catalogIDs("acme"); !equalCatalogs(got, before) {
			t.Errorf("a cancelled upload changed the catalog: %d products", len(got))
		}
		if n := ts.stagedMsgs(); n != 0 {
			t.Errorf("the cancelled upload left %d staged batches", n)
		}
	})

	held := ts.uploadOK("acme", key, simpleFeed(1, 10, map[int]string{3: "999"}), "mode=full")
	if held.State != schemas.StateHeld {
		t.Fatalf("second short feed: %s %+v", held.State, held.Hold)
	}
	// A hold outlives a restart.
	ts.stop()
	ts = startTestSystem(t, ts.dir)
	if again := ts.status(held.ID, key); again.State != schemas.StateHeld || again.Hold.WouldDelete != 90 {
		t.Fatalf("after a restart the held upload is %s %+v", again.State, again.Hold)
	}
	t.Run("a held feed applies once confirmed", func(t *testing.T) {
		st := ts.decide(held.ID, key, schemas.DecisionConfirm)
		if st.State != schemas.StateDone || st.Counts.Deleted != 90 || st.Counts.Accepted != 2 || st.Hold.Decision != schemas.DecisionConfirm {
			t.Fatalf("confirmed: %s %+v %+v", st.State, st.Counts, st.Hold)
		}
		got := ts.catalogIDs("acme")
		if len(got) != 10 || got["acme:Q3"] != "999" {
			t.Errorf("after confirming: %d products, Q3 %s", len(got), got["acme:Q3"])
		}
		if n := ts.stagedMsgs(); n != 0 {
			t.Errorf("the applied upload left %d staged batches", n)
		}
		// Confirming again answers the same and changes nothing.
		if r := ts.do("POST", "/v1/uploads/"+st.ID+"/confirm", key, nil, ""); r.Status != 202 {
			t.Errorf("confirming twice: %d %s", r.Status, r.Body)
		}
		before = got
	})

	t.Run("a partner's own threshold", func(t *testing.T) {
		r := ts.do("PUT", "/v1/partners/acme/settings", key, strings.NewReader(`{"max_delete_percent": 101}`), "application/json")
		if r.Status != 422 {
			t.Errorf("threshold 101: %d %s", r.Status, r.Body)
		}
		r = ts.do("PUT", "/v1/partners/acme/settings", key, strings.NewReader(`{"max_delete_percent": 100}`), "application/json")
		if r.Status != 200 || !strings.Contains(string(r.Body), `"effective_max_delete_percent":100`) {
			t.Fatalf("threshold 100: %d %s", r.Status, r.Body)
		}
		st := ts.uploadOK("acme", key, simpleFeed(1, 2, nil), "mode=full")
		if st.State != schemas.StateDone || st.Counts.Deleted != 8 || st.Hold != nil {
			t.Errorf("with 100%% allowed, a feed of 2 of 10: %s %+v %+v", st.State, st.Counts, st.Hold)
		}
		r = ts.do("PUT", "/v1/partners/acme/settings", key, strings.NewReader(`{"max_delete_percent": null}`), "application/json")
		if r.Status != 200 || !strings.Contains(string(r.Body), `"effective_max_delete_percent":30`) {
			t.Errorf("back to the default: %d %s", r.Status, r.Body)
		}
	})

	t.Run("feedline push --confirm", func(t *testing.T) {
		path := t.TempDir() + "/feed.csv"
		writeTestFile(t, path, simpleFeed(50, 59, nil))
		var out, errOut bytes.Buffer
		args := []string{"push", path, "--partner", "acme", "--api", ts.base, "--key", key, "--quiet"}
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "is held") {
			t.Fatalf("push of a feed replacing the catalog: exit %d\n%s\n%s", code, out.String(), errOut.String())
		}
		held := strings.Fields(out.String()[strings.Index(out.String(), "upload"):])[1]
		out.Reset()
		errOut.Reset()
		if code := run(context.Background(), []string{"upload", "confirm", held, "--api", ts.base, "--key", key, "--quiet"}, &out, &errOut); code != 0 {
			t.Fatalf("upload confirm: exit %d\n%s\n%s", code, out.String(), errOut.String())
		}
		if got := ts.catalogIDs("acme"); len(got) != 10 || got["acme:Q50"] == "" {
			t.Errorf("after upload confirm: %d products", len(got))
		}
		writeTestFile(t, path, simpleFeed(70, 79, nil))
		out.Reset()
		errOut.Reset()
		if code := run(context.Background(), append(args, "--confirm"), &out, &errOut); code != 0 || !strings.Contains(out.String(), "confirm") {
			t.Fatalf("push --confirm: exit %d\n%s\n%s", code, out.String(), errOut.String())
		}
		if got := ts.catalogIDs("acme"); len(got) != 10 || got["acme:Q70"] == "" || got["acme:Q50"] != "" {
			t.Errorf("after push --confirm: %v", got)
		}
	})
	if n := ts.search(url.Values{"partner": {"acme"}, "limit": {"1"}}).Total; n != 10 {
		t.Errorf("search finds %d products at the end, want 10", n)
	}
}

func equalCatalogs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// stagedMsgs counts what waits in the staging stream.
func (ts *testSystem) stagedMsgs() uint64 {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return streamMsgs(ctx, ts.t, ts.sys.bus, topology.StreamStaged)
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A process killed while it applies a confirmed upload finishes it after a
// restart: every staged change and every deletion applied once, nothing
// staged left behind.
func TestKilledWhileApplyingAConfirmedUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a feedline process")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProcess(t, bin, dir, addr)
	ts := &testSystem{t: t, base: "http://" + addr, dir: dir}
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, simpleMapping)
	if st := ts.uploadOK("acme", key, simpleFeed(1, 40_000, nil), "mode=full"); st.State != schemas.StateDone {
		t.Fatalf("first upload: %s %+v", st.State, st.Counts)
	}
	changed := map[int]string{}
	for i := 1; i <= 15_000; i++ {
		changed[i] = fmt.Sprint(50_000 + i)
	}
	held := ts.uploadOK("acme", key, simpleFeed(1, 15_000, changed), "mode=full")
	if held.State != schemas.StateHeld || held.Hold.WouldDelete != 25_000 {
		t.Fatalf("second upload: %s %+v", held.State, held.Hold)
	}
	if r := ts.do("POST", "/v1/uploads/"+held.ID+"/confirm", key, nil, ""); r.Status != 202 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := ts.status(held.ID, key)
		if s.State == schemas.StateDone {
			t.Log("the confirmed upload was applied before the kill")
			break
		}
		if s.Counts.Indexed > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill(t)

	p = startProcess(t, bin, dir, addr)
	st := ts.waitUpload(held.ID, key)
	if st.State != schemas.StateDone || st.Counts.Deleted != 25_000 || st.Counts.Indexed != 15_000 {
		t.Fatalf("after the restart the confirmed upload is %s %+v: %s\n%s", st.State, st.Counts, st.Error, p.logs)
	}
	got := ts.catalogIDs("acme")
	if len(got) != 15_000 {
		t.Errorf("catalog holds %d products, want 15000", len(got))
	}
	for i := 1; i <= 15_000; i++ {
		if price := got[fmt.Sprintf("acme:Q%d", i)]; price != changed[i] {
			t.Fatalf("Q%d costs %q, want %s", i, price, changed[i])
		}
	}
	p.terminate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if n := streamMsgs(ctx, t, bus, topology.StreamStaged); n != 0 {
		t.Errorf("%d staged batches left after the upload was applied", n)
	}
}

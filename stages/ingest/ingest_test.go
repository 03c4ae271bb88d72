package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"

	"feedline/connectors/decode"
	"feedline/connectors/natskv"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// system is the ingest stage running on an embedded JetStream with the real
// ledger, file store and mapping store.
type system struct {
	t        *testing.T
	bus      *pipeline.Bus
	ledger   natskv.Ledger
	files    schemas.FileStore
	mappings natskv.Mappings
	runner   *pipeline.Runner
	uploads  int

	mu    sync.Mutex
	noted []string // uploads the dead-letter hook was told about
}

// startSystem starts the stage; wrap, if set, changes the file store it reads.
func startSystem(t *testing.T, wrap func(schemas.FileStore) schemas.FileStore) *system {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		t.Fatal(err)
	}
	bucket := func(name string) jetstream.KeyValue {
		kv, err := bus.KV(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	objects, err := bus.Objects(ctx, topology.ObjectUploads)
	if err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, bus: bus, ledger: natskv.Ledger{KV: bucket(topology.BucketUploads)}, files: natskv.Files{Store: objects},
		mappings: natskv.Mappings{KV: bucket(topology.BucketMappings)}}
	files := s.files
	if wrap != nil {
		files = wrap(files)
	}
	// As the serving process does: a dead letter is noted on its upload.
	s.runner, err = pipeline.NewRunner(bus, pipeline.NewMetrics(), quiet, pipeline.OnDeadLetter(func(ctx context.Context, d schemas.DeadLetter) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if d.Source.Upload != "" {
			s.noted = append(s.noted, d.Source.Upload)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	stage := &Stage{Files: files, Ledger: s.ledger, Mappings: s.mappings, Open: decode.Open,
		Pub: bus.Publisher(), TempDir: t.TempDir(), Log: quiet}
	cfg := stage.Config()
	runCtx, stop := context.WithCancel(context.Background())
	if _, err := s.runner.Consumer(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.runner.Run(runCtx, cfg); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { stop(); <-done })
	return s
}

func (s *system) putMapping(partner string, m schemas.Mapping) int {
	s.t.Helper()
	stored, err := s.mappings.PutMapping(context.Background(), partner, m)
	if err != nil {
		s.t.Fatal(err)
	}
	return stored.Version
}

// upload stores a file and announces it the way the API does.
func (s *system) upload(partner, format string, version int, file []byte) schemas.UploadEvent {
	s.t.Helper()
	ev := s.record(partner, format, version, file)
	s.publish(ev, ev.ID)
	return ev
}

// record stores a file and records its upload in the ledger, as the API does
// before it announces it.
func (s *system) record(partner, format string, version int, file []byte) schemas.UploadEvent {
	s.t.Helper()
	ctx := context.Background()
	s.uploads++
	ev := schemas.UploadEvent{
		ID: fmt.Sprintf("u%d-%s", s.uploads, partner), Partner: partner, Mode: schemas.ModeFull, Format: format,
		MappingVersion: version, Filename: "feed." + format, ReceivedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	ev.Object = ev.ID
	size, err := s.files.Put(ctx, ev.Object, bytes.NewReader(file))
	if err != nil {
		s.t.Fatal(err)
	}
	ev.Size = size
	if err := s.ledger.Create(ctx, ev); err != nil {
		s.t.Fatal(err)
	}
	return ev
}

// publish puts an upload event straight onto the stream, headers and all.
func (s *system) publish(ev schemas.UploadEvent, msgID string) {
	s.t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	md := pipeline.Metadata{schemas.HeaderPartner: ev.Partner, schemas.HeaderUpload: ev.ID}
	out := pipeline.Outgoing{Subject: schemas.Subject(schemas.SubjectUploaded, ev.Partner), MsgID: msgID, Data: data, Metadata: md}
	if _, err := s.bus.Publisher().Publish(context.Background(), out); err != nil {
		s.t.Fatal(err)
	}
}

// ingested waits until ingest recorded the upload.
func (s *system) ingested(id string) schemas.IngestRecord {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := s.ledger.Ingested(context.Background(), id)
		if err == nil {
			return rec
		}
		if !errors.Is(err, schemas.ErrNotFound) {
			s.t.Fatal(err)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("upload %s not ingested after 30s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closed waits until an upload is decoded and its closing batch is
// published: ingest records the decoding first, then closes it.
func (s *system) closed(id string) (schemas.IngestRecord, rawOf) {
	s.t.Helper()
	rec := s.ingested(id)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.rawOf(id)
		if len(got.ends) > 0 || rec.Error != "" || time.Now().After(deadline) {
			return rec, got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// raw reads every raw batch of the stream, in order.
func (s *system) raw() []schemas.RawBatch {
	s.t.Helper()
	var out []schemas.RawBatch
	_, err := s.bus.Replay(context.Background(), topology.StreamRaw, schemas.SubjectRaw+".>", func(m *pipeline.Message) error {
		var b schemas.RawBatch
		if err := schemas.UnmarshalRawBatch(m.Data, &b); err != nil {
			return err
		}
		if want := schemas.RawSubject(b.Partner, b.Upload); m.Subject != want {
			return fmt.Errorf("batch of %s on %s", b.Partner, m.Subject)
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// rawOf is what ingest published for one upload: its rows, rejections,
// rejected rows and closing batches.
type rawOf struct {
	batches  []schemas.RawBatch
	rows     []schemas.RawRow
	rejected []schemas.Issue
	values   []schemas.RawRow
	ends     []schemas.RawBatch
}

func (s *system) rawOf(id string) rawOf {
	var out rawOf
	for _, b := range s.raw() {
		if b.Upload != id {
			continue
		}
		out.batches = append(out.batches, b)
		if b.End != nil {
			out.ends = append(out.ends, b)
			continue
		}
		out.rows = append(out.rows, b.Rows...)
		out.rejected = append(out.rejected, b.Rejections...)
		out.values = append(out.values, b.RejectedRows...)
	}
	return out
}

// deadLetters waits for n dead letters of the ingest stage, the only stage
// here, and reads them.
func (s *system) deadLetters(n int) []schemas.DeadLetter {
	s.t.Helper()
	ctx := context.Background()
	st, err := s.bus.JetStream().Stream(ctx, topology.StreamDLQ)
	if err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := st.Info(ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		if info.State.Msgs >= uint64(n) {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d dead letters after 30s, want %d", info.State.Msgs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out []schemas.DeadLetter
	_, err = s.bus.Replay(ctx, topology.StreamDLQ, schemas.Subject(schemas.SubjectDLQ, "ingest"), func(m *pipeline.Message) error {
		var d schemas.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// naverFeed is a Naver EP TSV of n products; row stray has a title that
// starts with an inch mark.
func naverFeed(n, stray int) []byte {
	var b bytes.Buffer
	b.WriteString("id\ttitle\tprice_pc\tlink\n")
	for i := 1; i <= n; i++ {
		title := fmt.Sprintf("상품 %d", i)
		if i == stray {
			title = `"27인치 모니터`
		}
		fmt.Fprintf(&b, "P%d\t%s\t%d\thttps://shop.example/%d\n", i, title, 1000*i, i)
	}
	return b.Bytes()
}

// TestIngestQuotesAsTheUploadsMappingVersionSays decodes one TSV with an
// inch mark under mapping versions that leave quoting off and turn it on:
// each upload follows the version it was made with, not the current one,
// and the rejected row travels with its values.
func TestIngestQuotesAsTheUploadsMappingVersionSays(t *testing.T) {
	t.Parallel()
	s := startSystem(t, nil)
	const n, stray = 2500, 1700
	file := naverFeed(n, stray)
	plain := s.putMapping("acme", schemas.Mapping{Preset: schemas.PresetNaverEP})
	on := true
	quoted := s.putMapping("acme", schemas.Mapping{Preset: schemas.PresetNaverEP, Quoted: &on})

	// Made with the first version after the second one became current.
	first := s.upload("acme", schemas.FormatNaverEP, plain, file)
	second := s.upload("acme", schemas.FormatNaverEP, quoted, file)

	rec, got := s.closed(first.ID)
	if rec.Error != "" || rec.Rows != n || len(got.rows) != n || len(got.rejected) != 0 {
		t.Fatalf("quoting off: record %+v, %d rows, rejections %v", rec, len(got.rows), got.rejected)
	}
	if v := got.rows[stray-1].Values; v[1] != `"27인치 모니터` {
		t.Errorf("row %d = %q, want the inch mark kept", stray, v)
	}
	if len(got.ends) != 1 || got.ends[0].End.Rows != n || got.ends[0].UploadSeq != rec.Seq {
		t.Errorf("closing batches %+v, want one for %d rows at sequence %d", got.ends, n, rec.Seq)
	}

	rec, got = s.closed(second.ID)
	if rec.Error != "" || rec.Rows != n || len(got.rows) != n-1 || len(got.rejected) != 1 {
		t.Fatalf("quoting on: record %+v, %d rows, rejections %v", rec, len(got.rows), got.rejected)
	}
	if r := got.rejected[0]; r.Row != stray || !strings.Contains(r.Reason, fmt.Sprintf("line %d: a quoted field starts here", stray+1)) {
		t.Errorf("rejection %+v, want row %d with its line", r, stray)
	}
	want := []schemas.RawRow{{Row: stray, Values: []string{fmt.Sprint("P", stray), `"27인치 모니터`, fmt.Sprint(1000 * stray), fmt.Sprint("https://shop.example/", stray)}}}
	if !reflect.DeepEqual(got.values, want) {
		t.Errorf("rejected rows %+v, want %+v", got.values, want)
	}
	for _, b := range got.batches {
		for i, r := range b.RejectedRows {
			if b.Rejections[i].Row != r.Row {
				t.Errorf("batch %d: rejected row %d next to rejection of row %d", b.Batch, r.Row, b.Rejections[i].Row)
			}
		}
	}
	if len(got.ends) != 1 || got.ends[0].End.Rows != n {
		t.Errorf("closing batches %+v", got.ends)
	}
}

// failAfter fails reading a stored file after n bytes, as a connection that
// drops halfway does.
type failAfter struct {
	schemas.FileStore
	n int
}

var errDropped = errors.New("object store: connection reset")

func (f failAfter) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := f.FileStore.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, int64(f.n)), errorReader{errDropped}), rc}, nil
}

type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }

// damagedParquet is a Parquet file of rows rows whose fourth row group is
// scrambled: the first three decode, then the decoder gives up.
func damagedParquet(t *testing.T, rows int) []byte {
	t.Helper()
	type row struct {
		ID    string `parquet:"id"`
		Title string `parquet:"title"`
		Price string `parquet:"price"`
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b, parquet.MaxRowsPerRowGroup(1000))
	for i := range rows {
		if _, err := w.Write([]row{{ID: fmt.Sprint("P", i), Title: fmt.Sprint("Product ", i), Price: "1000"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file := b.Bytes()
	f, err := parquet.OpenFile(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Metadata().RowGroups[3].Columns[0].MetaData
	for i := c.DataPageOffset; i < c.DataPageOffset+c.TotalCompressedSize; i++ {
		file[i] ^= 0x5a
	}
	return file
}

// TestIngestGivingUpFailsTheUploadAndClosesNothing checks that a file the
// decoder gives up on halfway fails its upload with the reason and never
// gets its closing batch, so a full upload deletes nothing. The first read,
// which publishes nothing, already finds it.
func TestIngestGivingUpFailsTheUploadAndClosesNothing(t *testing.T) {
	t.Parallel()
	var csv bytes.Buffer
	csv.WriteString("id,title,price\n")
	for i := range 5000 {
		fmt.Fprintf(&csv, "P%d,Product %d,1000\n", i, i)
	}
	for _, tc := range []struct {
		name   string
		format string
		file   []byte
		wrap   func(schemas.FileStore) schemas.FileStore
		reason string
	}{
		{"read error", schemas.FormatCSV, csv.Bytes(), func(f schemas.FileStore) schemas.FileStore { return failAfter{f, csv.Len() * 2 / 3} }, errDropped.Error()},
		{"damaged parquet", schemas.FormatParquet, damagedParquet(t, 5000), nil, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSystem(t, tc.wrap)
			up := s.upload("acme", tc.format, s.putMapping("acme", schemas.Mapping{Fields: map[string]schemas.FieldSource{
				"id": {"id"}, "title": {"title"}, "price": {"price"}}, Defaults: map[string]string{"currency": "KRW"}}), tc.file)
			rec := s.ingested(up.ID)
			if !strings.Contains(rec.Error, tc.reason) || !strings.Contains(rec.Error, "after") {
				t.Fatalf("ingest record %+v, want the reason %q and how far it got", rec, tc.reason)
			}
			dl := s.deadLetters(1)
			if dl[0].Source.Upload != up.ID || dl[0].Error != rec.Error {
				t.Errorf("dead letter %+v, want upload %s with the reason", dl[0], up.ID)
			}
			st, err := s.ledger.Status(context.Background(), up.ID)
			if err != nil || st.State != schemas.StateFailed || st.Error != rec.Error {
				t.Errorf("status %+v (%v), want failed with the reason", st, err)
			}
			got := s.rawOf(up.ID)
			if len(got.rows) != 0 {
				t.Errorf("%d rows published before giving up, want none", len(got.rows))
			}
			if len(got.ends) != 0 {
				t.Errorf("closing batch published for a failed upload: %+v", got.ends[0])
			}
		})
	}
}

// TestIngestRefusesForgedEvents publishes upload events straight onto the
// stream: ones that reuse an upload's id, before the API's own event, to put
// its file into another partner's catalog or to change how it is read; one
// that puts another partner's file under an upload; one naming an unknown
// upload; and a replay of a decoded one. None decodes anything, none touches
// the upload it names, and each is dead-lettered with a reason.
func TestIngestRefusesForgedEvents(t *testing.T) {
	t.Parallel()
	s := startSystem(t, nil)
	mapping := schemas.Mapping{Preset: schemas.PresetNaverEP}
	const alphaRows, betaRows = 1500, 3
	alpha := s.record("alpha", schemas.FormatNaverEP, s.putMapping("alpha", mapping), naverFeed(alphaRows, 0))
	beta := s.record("beta", schemas.FormatNaverEP, s.putMapping("beta", mapping), naverFeed(betaRows, 0))

	intoBeta := alpha
	intoBeta.Partner = "beta"
	betaWithAlphasFile := beta
	betaWithAlphasFile.Object = alpha.Object
	otherMode := alpha
	otherMode.Mode = schemas.ModeDelta
	otherFormat := alpha
	otherFormat.Format, otherFormat.Delimiter = schemas.FormatCSV, ","
	otherVersion := alpha
	otherVersion.MappingVersion = 7
	unknown := alpha
	unknown.ID, unknown.Partner = "u-made-up", "beta"
	forged := []struct {
		ev     schemas.UploadEvent
		reason string
	}{
		{intoBeta, `partner "beta" where the upload has "alpha"`},
		{betaWithAlphasFile, fmt.Sprintf(`object %q where the upload has %q`, alpha.Object, beta.Object)},
		{otherMode, `mode "delta" where the upload has "full"`},
		{otherFormat, `format "csv" where the upload has "naver_ep", delimiter "," where the upload has ""`},
		{otherVersion, `mapping version "7" where the upload has "1"`},
		{unknown, `upload "u-made-up" is not in the ledger`},
	}
	for i, f := range forged {
		s.publish(f.ev, fmt.Sprint("forged-", i))
	}
	s.deadLetters(len(forged)) // waits until every forged event is dead-lettered
	if raw := s.raw(); len(raw) != 0 {
		t.Fatalf("forged events published %d raw batches", len(raw))
	}
	// The API's own events come after the forged ones and go through.
	s.publish(alpha, alpha.ID)
	s.publish(beta, beta.ID)
	for _, u := range []struct {
		ev   schemas.UploadEvent
		rows int
	}{{alpha, alphaRows}, {beta, betaRows}} {
		rec, got := s.closed(u.ev.ID)
		if rec.Error != "" || len(got.rows) != u.rows || len(got.ends) != 1 {
			t.Errorf("upload %s: record %+v, %d rows, %d closing batches; want %d rows", u.ev.ID, rec, len(got.rows), len(got.ends), u.rows)
		}
		for _, b := range got.batches {
			if b.Partner != u.ev.Partner || b.Mode != u.ev.Mode || b.UploadSeq != rec.Seq {
				t.Errorf("upload %s: batch %d of partner %s, mode %s, sequence %d", u.ev.ID, b.Batch, b.Partner, b.Mode, b.UploadSeq)
			}
		}
	}
	// A replay of a decoded upload would close it again at another
	// sequence, and a full upload would then delete what it just listed.
	alphaRec := s.ingested(alpha.ID)
	before := len(s.raw())
	s.publish(alpha, "replay")
	forged = append(forged, struct {
		ev     schemas.UploadEvent
		reason string
	}{alpha, fmt.Sprintf("upload %s was decoded from the upload event at sequence %d; this is another event for it", alpha.ID, alphaRec.Seq)})
	dl := s.deadLetters(len(forged))
	if after := len(s.raw()); after != before {
		t.Errorf("the replay published %d raw batches", after-before)
	}
	if rec, err := s.ledger.Ingested(context.Background(), alpha.ID); err != nil || rec != alphaRec {
		t.Errorf("ingest record of %s is now %+v (%v), was %+v", alpha.ID, rec, err, alphaRec)
	}

	for i, f := range forged {
		d := dl[i]
		if !strings.Contains(d.Error, f.reason) || !strings.HasPrefix(d.Error, "upload event refused") {
			t.Errorf("forged event %d dead-lettered for %q, want %q", i, d.Error, f.reason)
		}
		if d.Source != (schemas.SourcePosition{}) || d.Headers[schemas.HeaderUpload] != f.ev.ID {
			t.Errorf("forged event %d: source %+v, headers %v; want no source, the claimed headers kept", i, d.Source, d.Headers)
		}
	}
	for _, id := range []string{alpha.ID, beta.ID} {
		if st, err := s.ledger.Status(context.Background(), id); err != nil || st.State == schemas.StateFailed {
			t.Errorf("upload %s: status %+v (%v)", id, st, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.noted) != 0 {
		t.Errorf("dead letters were noted against uploads %v", s.noted)
	}
}

// A product listed twice, in batches far apart, has only its last row sent
// on: ingest's first read finds the earlier rows and marks them, so
// normalise (any worker, any order) counts and warns them without a change.
func TestIngestMarksRowsALaterRowSupersedes(t *testing.T) {
	t.Parallel()
	s := startSystem(t, nil)
	var csv bytes.Buffer
	csv.WriteString("id,title,price\n")
	for i := range 2500 {
		fmt.Fprintf(&csv, "P%d,Product %d,1000\n", i%2000, i) // P0..P499 twice: rows 1..500 and 2001..2500
	}
	up := s.upload("acme", schemas.FormatCSV, s.putMapping("acme", schemas.Mapping{Fields: map[string]schemas.FieldSource{
		"id": {"id"}, "title": {"title"}, "price": {"price"}}, Defaults: map[string]string{"currency": "KRW"}}), csv.Bytes())
	if rec := s.ingested(up.ID); rec.Error != "" || rec.Rows != 2500 || rec.Batches != 3 {
		t.Fatalf("ingest record %+v", rec)
	}
	var marked []schemas.Supersession
	for _, b := range s.rawOf(up.ID).batches {
		for _, sp := range b.Superseded {
			if b.Batch != 0 {
				t.Errorf("row %d marked in batch %d; the earlier rows are all in batch 0", sp.Row, b.Batch)
			}
			marked = append(marked, sp)
		}
	}
	if len(marked) != 500 || marked[0] != (schemas.Supersession{Row: 1, By: 2001}) || marked[499] != (schemas.Supersession{Row: 500, By: 2500}) {
		t.Errorf("%d rows marked superseded, first %+v", len(marked), marked[:min(len(marked), 1)])
	}
}

// A file whose columns do not feed the mapping fails once, with the reason,
// before anything is published: a Parquet file with another schema as much
// as a CSV with other headers.
func TestIngestFailsAFileWhoseColumnsDoNotMatchTheMapping(t *testing.T) {
	t.Parallel()
	s := startSystem(t, nil)
	version := s.putMapping("acme", schemas.Mapping{Fields: map[string]schemas.FieldSource{
		"id": {"sku"}, "title": {"name"}, "price": {"price"}}, Defaults: map[string]string{"currency": "KRW"}})
	var csv bytes.Buffer
	csv.WriteString("id,title,price\n")
	for i := range 3000 {
		fmt.Fprintf(&csv, "P%d,Product %d,1000\n", i, i)
	}
	for _, tc := range []struct {
		format string
		file   []byte
	}{
		{schemas.FormatCSV, csv.Bytes()},
		{schemas.FormatParquet, parquetRows(t, 3000)},
		{schemas.FormatNDJSON, []byte("{\"id\": \"P1\", \"title\": \"x\", \"price\": 5}\n{\"id\": \"P2\", \"title\": \"y\", \"price\": 6}\n")},
	} {
		t.Run(tc.format, func(t *testing.T) {
			up := s.upload("acme", tc.format, version, tc.file)
			rec := s.ingested(up.ID)
			if !strings.Contains(rec.Error, "columns do not match the mapping") || !strings.Contains(rec.Error, `id is mapped to column "sku"`) ||
				!strings.Contains(rec.Error, `title is mapped to column "name"`) || !strings.Contains(rec.Error, `"title"`) {
				t.Fatalf("ingest record %+v, want one reason naming the missing columns and the file's", rec)
			}
			if got := s.rawOf(up.ID); len(got.batches) != 0 {
				t.Errorf("%d batches published for a file that cannot be mapped", len(got.batches))
			}
			st, err := s.ledger.Status(context.Background(), up.ID)
			if err != nil || st.State != schemas.StateFailed || st.Error != rec.Error {
				t.Errorf("status %+v (%v), want failed with the reason", st, err)
			}
		})
	}
}

// parquetRows is a sound Parquet file of id, title and price.
func parquetRows(t *testing.T, n int) []byte {
	type row struct {
		ID    string `parquet:"id"`
		Title string `parquet:"title"`
		Price string `parquet:"price"`
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b)
	for i := range n {
		if _, err := w.Write([]row{{fmt.Sprint("P", i), "Product", "1000"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

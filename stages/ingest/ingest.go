// Package ingest decodes an uploaded partner file row by row into raw
// batches for the normalise stage.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// Batch limits: a raw batch closes at whichever comes first.
const (
	BatchRows  = 1000
	BatchBytes = 512 << 10
)

// Stage decodes uploads. It trusts only what the API recorded: an upload
// event must match its upload in the ledger, and the file is decoded with
// the recorded settings and the mapping version the upload was made with.
type Stage struct {
	Files    schemas.FileStore
	Ledger   schemas.UploadLedger
	Mappings schemas.MappingStore
	Open     schemas.OpenDecoder
	Pub      pipeline.JetStreamPublisher
	TempDir  string
	Log      *slog.Logger
	// MaxBytes bounds what a file may unpack to, MaxExpansion its unpacked
	// bytes per packed byte; 0 takes the decoder's defaults.
	MaxBytes     int64
	MaxExpansion int
}

// Config is the stage's place in the pipeline.
func (s *Stage) Config() pipeline.Stage {
	return pipeline.Stage{
		Name:      "ingest",
		Stream:    topology.StreamUploads,
		Handle:    pipeline.PerMessage(s.Handle),
		BatchSize: 1,
		// Files take long: heartbeats keep the message, the timeout only
		// stops a decoder that hangs.
		HandlerTimeout: 6 * time.Hour,
	}
}

// Handle decodes one uploaded file. A file that cannot be read at all fails
// the upload (terminal); unreadable rows become rejections and decoding goes
// on. An event that does not match the upload the API recorded is refused
// and touches nothing of that upload.
func (s *Stage) Handle(ctx context.Context, m *pipeline.Message) error {
	var ev schemas.UploadEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return s.refuse(m, ev, fmt.Errorf("upload event is not JSON: %w", err))
	}
	up, err := s.recorded(ctx, m, ev)
	if err != nil {
		if errors.Is(err, errForged) {
			return s.refuse(m, ev, err)
		}
		return err
	}
	log := s.Log.With("upload", up.ID, "partner", up.Partner)
	// Decoded before a crash: only the closing marker may be missing.
	if rec, err := s.Ledger.Ingested(ctx, up.ID); err == nil {
		if rec.Seq != 0 && rec.Seq != m.Sequence {
			return s.refuse(m, ev, fmt.Errorf("%w: upload %s was decoded from the upload event at sequence %d; this is another event for it (sequence %d), a replay",
				errForged, up.ID, rec.Seq, m.Sequence))
		}
		if rec.Error == "" {
			return s.publishEnd(ctx, up, m.Sequence, rec)
		}
	} else if !errors.Is(err, schemas.ErrNotFound) {
		return err
	}
	stop := &cancelCheck{ledger: s.Ledger, upload: up.ID}
	rec, err := s.decode(ctx, up, m, stop)
	rec.Seq = m.Sequence
	if err != nil {
		if errors.Is(err, errFile) {
			if lerr := s.Ledger.RecordIngest(ctx, up.ID, schemas.IngestRecord{Rows: rec.Rows, Batches: rec.Batches, Seq: rec.Seq, Error: err.Error()}); lerr != nil {
				return lerr
			}
			log.Warn("upload failed", "err", err)
			return pipeline.Terminal(err)
		}
		return err
	}
	if err := s.Ledger.RecordIngest(ctx, up.ID, rec); err != nil {
		return err
	}
	pipeline.CountItems(ctx, "read", rec.Rows)
	if stop.cancelled {
		log.Info("upload cancelled: decoding stopped", "rows", rec.Rows, "batches", rec.Batches)
	} else {
		log.Info("upload decoded", "rows", rec.Rows, "batches", rec.Batches)
	}
	return s.publishEnd(ctx, up, m.Sequence, rec)
}

// cancelCheck asks the ledger, at most once a second, whether the upload
// being decoded was cancelled.
type cancelCheck struct {
	ledger    schemas.UploadLedger
	upload    string
	last      time.Time
	cancelled bool
}

func (c *cancelCheck) now(ctx context.Context) bool {
	if c.cancelled || time.Since(c.last) < time.Second {
		return c.cancelled
	}
	c.last = time.Now()
	v, err := c.ledger.Cancelled(ctx, c.upload)
	c.cancelled = err == nil && v
	return c.cancelled
}

// errForged marks an upload event feedline's API did not publish.
var errForged = errors.New("upload event refused")

// recorded checks an upload event against the upload the API recorded and
// returns the record, the only thing trusted from here on. An event that
// names an unknown upload, or another partner, object, mode, format,
// mapping version or delimiter than the record, was not published by the API.
func (s *Stage) recorded(ctx context.Context, m *pipeline.Message, ev schemas.UploadEvent) (schemas.UploadEvent, error) {
	rec, err := s.Ledger.Upload(ctx, ev.ID)
	if errors.Is(err, schemas.ErrNotFound) {
		return rec, fmt.Errorf("%w: upload %q is not in the ledger, so feedline's API never accepted it", errForged, ev.ID)
	}
	if err != nil {
		return rec, err
	}
	var diff []string
	differs := func(what string, got, want any) {
		if got != want {
			diff = append(diff, fmt.Sprintf("%s %q where the upload has %q", what, fmt.Sprint(got), fmt.Sprint(want)))
		}
	}
	differs("partner", ev.Partner, rec.Partner)
	differs("object", ev.Object, rec.Object)
	differs("mode", ev.Mode, rec.Mode)
	differs("format", ev.Format, rec.Format)
	differs("compression", ev.Compression, rec.Compression)
	differs("mapping version", ev.MappingVersion, rec.MappingVersion)
	differs("delimiter", ev.Delimiter, rec.Delimiter)
	differs("subject", m.Subject, schemas.Subject(schemas.SubjectUploaded, rec.Partner))
	if len(diff) > 0 {
		return rec, fmt.Errorf("%w: it does not match upload %s as the API recorded it: %s", errForged, ev.ID, strings.Join(diff, ", "))
	}
	return rec, nil
}

// refuse logs and dead-letters an upload event that is not what it claims;
// the upload it names, if any, is left as it is.
func (s *Stage) refuse(m *pipeline.Message, ev schemas.UploadEvent, err error) error {
	s.Log.Error("upload event refused; find out who publishes on "+m.Subject+" besides feedline's API",
		"subject", m.Subject, "seq", m.Sequence, "upload", ev.ID, "claimed_partner", ev.Partner, "claimed_object", ev.Object, "err", err)
	return pipeline.Refuse(err)
}

var errFile = errors.New("file cannot be read")

// decode publishes the file's rows in raw batches. A cancelled upload stops
// it: what was published stays, and the record says how much that was.
func (s *Stage) decode(ctx context.Context, up schemas.UploadEvent, m *pipeline.Message, stop *cancelCheck) (schemas.IngestRecord, error) {
	var rec schemas.IngestRecord
	if stop.now(ctx) {
		return rec, nil
	}
	mapping, err := s.Mappings.Mapping(ctx, up.Partner, up.MappingVersion)
	if errors.Is(err, schemas.ErrNotFound) {
		return rec, fmt.Errorf("%w: mapping version %d, which the upload was made with, is gone; upload the file again", errFile, up.MappingVersion)
	}
	if err != nil {
		return rec, err
	}
	var delim rune
	if up.Delimiter != "" {
		delim = []rune(up.Delimiter)[0]
	}
	opts := schemas.DecoderOptions{Format: up.Format, Delimiter: delim, Quoted: mapping.Quoted, Charset: mapping.Resolve().Charset, TempDir: s.TempDir,
		MaxBytes: s.MaxBytes, MaxExpansion: s.MaxExpansion}
	// A first read checks the columns against the mapping and finds the
	// rows a later row of the same product replaces, before anything is
	// published: a file that cannot be mapped fails once, with the reason,
	// and normalise, whichever worker gets which batch, sends on only the
	// last row of each product.
	superseded, err := s.survey(ctx, up, mapping, opts, stop)
	if err != nil || stop.cancelled {
		return rec, err
	}
	dec, closeFile, err := s.openFile(ctx, up, opts)
	if err != nil {
		return rec, err
	}
	defer closeFile()

	flight := s.Pub.Flight(16)
	batch := s.newBatch(up, m.Sequence, 0)
	size := 0
	flush := func() error {
		if len(batch.Rows) == 0 && len(batch.Rejections) == 0 {
			return nil
		}
		batch.Columns = append([]string(nil), dec.Columns()...)
		if err := s.publish(ctx, flight, batch); err != nil {
			return err
		}
		rec.Batches++
		batch = s.newBatch(up, m.Sequence, rec.Batches)
		size = 0
		return nil
	}
	for {
		row, err := dec.Next()
		if err == io.EOF {
			break
		}
		var rowErr *schemas.RowError
		switch {
		case errors.As(err, &rowErr):
			rec.Rows++
			code := rowErr.Code
			if code == "" {
				code = schemas.CodeRowUnreadable
			}
			batch.Rejections = append(batch.Rejections, schemas.Issue{Row: rowErr.Row, Code: code, Severity: schemas.SeverityError, Reason: rowErr.Reason})
			size += len(rowErr.Reason)
			if rowErr.Values != nil {
				batch.RejectedRows = append(batch.RejectedRows, schemas.RawRow{Row: rowErr.Row, Values: rowErr.Values})
				for _, v := range rowErr.Values {
					size += len(v) + 3
				}
			}
		case err != nil:
			if werr := flight.Wait(ctx); werr != nil {
				return rec, werr
			}
			return rec, fmt.Errorf("%w: after %d rows: %w", errFile, rec.Rows, err)
		default:
			rec.Rows++
			batch.Rows = append(batch.Rows, row)
			if by, ok := superseded[row.Row]; ok {
				batch.Superseded = append(batch.Superseded, schemas.Supersession{Row: row.Row, By: by})
			}
			for _, v := range row.Values {
				size += len(v) + 3
			}
		}
		if len(batch.Rows)+len(batch.Rejections) >= BatchRows || size >= BatchBytes {
			if stop.now(ctx) {
				return rec, flight.Wait(ctx)
			}
			if err := flush(); err != nil {
				return rec, err
			}
		}
	}
	if stop.now(ctx) {
		return rec, flight.Wait(ctx)
	}
	if err := flush(); err != nil {
		return rec, err
	}
	if c, ok := dec.(interface{ Charset() string }); ok {
		rec.Charset = c.Charset()
	}
	return rec, flight.Wait(ctx)
}

// openFile opens an upload's stored file with its decoder; closeFile
// closes both. A file gone from the store, or one that cannot be decoded,
// fails the upload (errFile).
func (s *Stage) openFile(ctx context.Context, up schemas.UploadEvent, opts schemas.DecoderOptions) (_ schemas.RowDecoder, closeFile func(), _ error) {
	rc, err := s.Files.Open(ctx, up.Object)
	if err != nil {
		if errors.Is(err, schemas.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w: the uploaded file is gone from the store", errFile)
		}
		return nil, nil, err
	}
	dec, err := s.Open(rc, opts)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("%w: %w", errFile, err)
	}
	return dec, func() { dec.Close(); rc.Close() }, nil
}

// survey reads the file once without publishing: it fails a file whose
// columns cannot feed the mapping, and returns the rows that a later row of
// the same product supersedes, each with the row that does. It keeps one
// hash per distinct product id, not the rows.
func (s *Stage) survey(ctx context.Context, up schemas.UploadEvent, mapping schemas.Mapping, opts schemas.DecoderOptions, stop *cancelCheck) (map[int64]int64, error) {
	dec, closeFile, err := s.openFile(ctx, up, opts)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	growing := schemas.ColumnsGrow(dec.Format())
	if !growing {
		if err := mapping.CheckColumns(dec.Columns()); err != nil {
			return nil, fmt.Errorf("%w: %w", errFile, err)
		}
	}
	last := map[uint64]int64{}
	superseded := map[int64]int64{}
	var rm *schemas.RowMapper
	ncols := -1
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if n%4096 == 0 && stop.now(ctx) {
			return nil, nil
		}
		row, err := dec.Next()
		if err == io.EOF {
			break
		}
		var rowErr *schemas.RowError
		switch {
		case errors.As(err, &rowErr):
			row = schemas.RawRow{Row: rowErr.Row, Values: rowErr.Values}
		case err != nil:
			return nil, fmt.Errorf("%w: after %d rows: %w", errFile, n, err)
		}
		if cols := dec.Columns(); len(cols) != ncols {
			rm, ncols = schemas.NewRowMapper(mapping, up.Partner, cols, up.ReceivedAt), len(cols)
		}
		sku := rm.SourceID(row)
		if sku == "" {
			continue
		}
		h := xxhash.Sum64String(sku)
		if prev, ok := last[h]; ok {
			superseded[prev] = row.Row
		}
		last[h] = row.Row
	}
	if growing {
		if err := mapping.CheckColumns(dec.Columns()); err != nil {
			return nil, fmt.Errorf("%w: %w", errFile, err)
		}
	}
	return superseded, nil
}

func (s *Stage) newBatch(up schemas.UploadEvent, seq uint64, n int) *schemas.RawBatch {
	return &schemas.RawBatch{
		Upload: up.ID, Partner: up.Partner, Mode: up.Mode, MappingVersion: up.MappingVersion,
		UploadSeq: seq, Batch: n, ReceivedAt: up.ReceivedAt, Rows: make([]schemas.RawRow, 0, BatchRows),
	}
}

func (s *Stage) publish(ctx context.Context, f pipeline.Flight, b *schemas.RawBatch) error {
	out, err := pipeline.Envelope(b)
	if err != nil {
		return err
	}
	return f.Publish(ctx, out)
}

// publishEnd closes the upload's raw stream; its id makes a republish a no-op.
func (s *Stage) publishEnd(ctx context.Context, up schemas.UploadEvent, seq uint64, rec schemas.IngestRecord) error {
	end := s.newBatch(up, seq, rec.Batches)
	end.Rows = nil
	end.End = &schemas.IngestTotal{Rows: rec.Rows, Batches: rec.Batches}
	_, err := pipeline.Publish(ctx, s.Pub, end)
	return err
}

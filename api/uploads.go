package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"time"

	"github.com/gofiber/fiber/v2"

	"feedline/pipeline"
	"feedline/schemas"
)

// headSize is how much of a file format detection sees, and the read buffer.
const headSize = 64 << 10

type uploadAccepted struct {
	UploadID string `json:"upload_id"`
}

// createUpload streams a partner file into the file store, records it in the
// ledger and announces it to ingest. It answers 202 only once JetStream
// acknowledged the announcement, so an accepted upload is never lost.
func (s *server) createUpload(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	params, err := uploadParamsOf(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	in, err := s.prepare(ctx, partner, params)
	if err != nil {
		return err
	}
	file, filename, err := uploadedFile(c)
	if err != nil {
		s.releaseSlot(ctx, in)
		return err
	}
	if filename == "" {
		filename = params.filename
	}
	if limit := s.cfg.MaxFileBytes; limit > 0 && int64(c.Request().Header.ContentLength()) > limit {
		// Answer at once and close, without waiting for a body that will
		// not be read.
		s.releaseSlot(ctx, in)
		bodyOf(c).err = errFileTooLarge
		return fileTooLarge(limit)
	}
	in.filename = filename
	st, err := s.store(ctx, in, file)
	if err != nil {
		return err
	}
	ev, err := s.publishUpload(ctx, st)
	if err != nil {
		return err
	}
	c.Location("/v1/uploads/" + ev.ID)
	return c.Status(fiber.StatusAccepted).JSON(uploadAccepted{UploadID: ev.ID})
}

// intake is an upload being accepted: pushed by the partner, fetched from
// its source, or retried from a stored file. Every one takes the same
// steps: prepare, store (or reuse a stored file), publishUpload.
type intake struct {
	id               string
	partner          string
	params           uploadParams
	filename         string
	source           string // the URL of a fetched feed
	retryOf          string
	mapping          schemas.Mapping
	maxDeletePercent int
}

// prepare reads what an upload of partner is made with (its current
// mapping and hold threshold) and takes one of the partner's in-flight
// slots, before any of the file is read.
func (s *server) prepare(ctx context.Context, partner string, params uploadParams) (*intake, error) {
	in := &intake{id: s.cfg.NewID(), partner: partner, params: params}
	var err error
	if in.mapping, err = s.currentMapping(ctx, partner); err != nil {
		return nil, err
	}
	if in.maxDeletePercent, err = s.maxDeletePercent(ctx, partner); err != nil {
		return nil, err
	}
	if s.cfg.Slots != nil && s.cfg.MaxInFlight > 0 {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		err := s.cfg.Slots.Reserve(sctx, partner, in.id, s.cfg.MaxInFlight)
		if errors.Is(err, schemas.ErrBusy) {
			return nil, tooManyInFlight(partner, s.cfg.MaxInFlight)
		}
		if err != nil {
			return nil, failed("count the partner's uploads in flight", err)
		}
	}
	return in, nil
}

// releaseSlot gives back the in-flight slot of an upload that will not be
// announced.
func (s *server) releaseSlot(ctx context.Context, in *intake) {
	if s.cfg.Slots == nil || s.cfg.MaxInFlight <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := s.cfg.Slots.Release(ctx, in.partner, in.id); err != nil {
		s.cfg.Log.Warn("could not free the in-flight slot of an upload that was not queued", "upload", in.id, "err", err)
	}
}

// tooManyInFlightRetry is how long a partner at its in-flight limit is
// asked to wait.
const tooManyInFlightRetry = 30

func tooManyInFlight(partner string, limit int) *problemError {
	p := kindProblem(schemas.ErrBusy, "too-many-uploads", "Too many uploads in flight",
		"Partner %s has %d uploads received or processing, the most it may have at once; send this one when one of them is done (GET /v1/partners/%s/uploads).",
		partner, limit, partner)
	p.retryAfter = tooManyInFlightRetry
	return p
}

// stored is a file in the file store whose upload is not announced yet.
type stored struct {
	*intake
	kind   schemas.FileKind
	object string
	size   int64
}

// store streams file into the file store, whole or not at all, detecting
// its format from its head. On any failure nothing is kept and the slot is
// given back.
func (s *server) store(ctx context.Context, in *intake, file io.Reader) (_ *stored, err error) {
	defer func() {
		if err != nil {
			s.releaseSlot(ctx, in)
		}
	}()
	src := &trackedReader{r: &sizeLimit{r: file, left: s.cfg.MaxFileBytes}}
	br := bufio.NewReaderSize(src, headSize)
	head, _ := br.Peek(headSize) // short at the end of the file
	if errors.Is(src.err, errFileTooLarge) {
		return nil, fileTooLarge(s.cfg.MaxFileBytes)
	}
	if src.err != nil {
		return nil, interrupted(src.err)
	}
	kind, err := s.cfg.Detect(head, in.params.format, in.mapping.Resolve().Charset)
	if err != nil {
		return nil, rejectedFile(head, err)
	}
	size, err := s.cfg.Files.Put(ctx, in.id, fullReads{br})
	if errors.Is(src.err, errFileTooLarge) {
		return nil, fileTooLarge(s.cfg.MaxFileBytes)
	}
	if src.err != nil {
		return nil, interrupted(src.err)
	}
	if err != nil {
		return nil, failed("store the file", err)
	}
	return &stored{intake: in, kind: kind, object: in.id, size: size}, nil
}

// discard removes a stored file that will not become an upload (a fetched
// feed identical to the last one) and gives back its slot.
func (s *server) discard(ctx context.Context, st *stored) {
	s.releaseSlot(ctx, st.intake)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := s.cfg.Files.Delete(ctx, st.object); err != nil {
		s.cfg.Log.Warn("could not remove a stored file that is not an upload", "object", st.object, "err", err)
	}
}

// publishUpload records a stored file's upload and announces it to ingest.
// When that fails, the record, the file (unless it belongs to another
// upload) and the slot are given back, and the error says to retry.
func (s *server) publishUpload(ctx context.Context, st *stored) (schemas.UploadEvent, error) {
	delim := st.kind.Delimiter
	if st.params.delimiter != 0 {
		delim = st.params.delimiter
	}
	ev := schemas.UploadEvent{
		ID: st.id, Partner: st.partner, Mode: st.params.mode, Format: st.kind.Format, Compression: st.kind.Compression, Charset: st.kind.Charset,
		MappingVersion: st.mapping.Version, Object: st.object, Size: st.size, Filename: st.filename,
		ReceivedAt: s.cfg.Now().UTC(), MaxDeletePercent: st.maxDeletePercent, Source: st.source, RetryOf: st.retryOf,
	}
	if delim != 0 {
		ev.Delimiter = string(delim)
	}
	if err := s.announce(ctx, ev); err != nil {
		s.forget(ctx, ev)
		s.releaseSlot(ctx, st.intake)
		return ev, err
	}
	return ev, nil
}

func (s *server) currentMapping(ctx context.Context, partner string) (schemas.Mapping, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	m, err := s.cfg.Mappings.Mapping(ctx, partner, 0)
	if errors.Is(err, schemas.ErrNotFound) {
		return m, unprocessable("no-mapping", "Partner has no mapping",
			`partner %q has no mapping: PUT /v1/partners/%s/mapping first, e.g. {"preset": "google_merchant"}`, partner, partner)
	}
	if err != nil {
		return m, failed("read the partner's mapping", err)
	}
	return m, nil
}

// announce records the upload in the ledger and publishes it to ingest.
func (s *server) announce(ctx context.Context, ev schemas.UploadEvent) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := s.cfg.Ledger.Create(ctx, ev); err != nil {
		return failed("record the upload", err)
	}
	out, err := pipeline.Envelope(ev)
	if err != nil {
		return fmt.Errorf("encode upload event: %w", err)
	}
	if _, err := s.cfg.Pub.Publish(ctx, out); err != nil {
		return failed("queue the upload for processing", err)
	}
	return nil
}

// forget removes what an upload left that was never announced; the client
// was told it failed. What a failure here leaves, the file sweep removes.
// A retried upload's file belongs to the upload it retries and stays.
func (s *server) forget(ctx context.Context, ev schemas.UploadEvent) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := s.cfg.Ledger.Discard(ctx, ev.ID); err != nil {
		s.cfg.Log.Warn("could not remove the record of an upload that was not queued", "upload", ev.ID, "err", err)
	}
	if ev.Object != ev.ID {
		return
	}
	if err := s.cfg.Files.Delete(ctx, ev.Object); err != nil {
		s.cfg.Log.Warn("could not remove the file of an upload that was not queued", "upload", ev.ID, "err", err)
	}
}

// uploadedFile is the raw request body, or the first file part of a
// multipart/form-data body, with the file name the client gave.
func uploadedFile(c *fiber.Ctx) (io.Reader, string, error) {
	body := bodyOf(c)
	mediaType, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mediaType != fiber.MIMEMultipartForm {
		return body, "", nil
	}
	if params["boundary"] == "" {
		return nil, "", badRequest("The multipart/form-data body has no boundary parameter in its Content-Type.")
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", badRequest("The multipart/form-data body has no file part; send the file as a form field with a file name (curl -F file=@products.csv).")
		}
		if err != nil {
			return nil, "", badRequest("The multipart/form-data body is malformed (%v); send the file again.", err)
		}
		if part.FileName() != "" {
			return &wholeForm{part: part, form: mr}, part.FileName(), nil
		}
	}
}

// wholeForm reads the file part of a multipart body and ends only once the
// rest of the body is well formed up to its closing boundary, so a form cut
// short after the file part is refused like a file cut short.
type wholeForm struct {
	part *multipart.Part
	form *multipart.Reader
}

func (f *wholeForm) Read(p []byte) (int, error) {
	n, err := f.part.Read(p)
	if errors.Is(err, io.EOF) {
		if rest := f.rest(); rest != nil {
			return n, rest
		}
	}
	return n, err
}

// rest reads past the parts after the file to the closing boundary.
func (f *wholeForm) rest() error {
	for {
		part, err := f.form.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the multipart/form-data body does not end with its closing boundary: %w", err)
		}
		if _, err := io.Copy(io.Discard, part); err != nil {
			return fmt.Errorf("a part after the file is cut short: %w", err)
		}
	}
}

// errFileTooLarge ends an upload body past the file size limit.
var errFileTooLarge = errors.New("the file is larger than the limit")

// sizeLimit fails a body once more than left bytes arrived (left 0: no limit).
type sizeLimit struct {
	r    io.Reader
	left int64
	seen int64
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.seen += int64(n)
	if l.left > 0 && l.seen > l.left {
		return n, errFileTooLarge
	}
	return n, err
}

func fileTooLarge(limit int64) error {
	return problem(fiber.StatusRequestEntityTooLarge, "file-too-large", "File too large",
		"The file is larger than %d bytes, the most feedline accepts (packed or not); split the feed into smaller files.", limit)
}

func interrupted(err error) error {
	return badRequest("The upload could not be read to its end (%s); send the file again.", clause(err))
}

// rejectedFile answers a file format detection refused: 422 when there is
// nothing to read, 415 when it is not a format feedline reads.
func rejectedFile(head []byte, err error) error {
	if len(bytes.TrimSpace(bytes.TrimPrefix(head, []byte("\xEF\xBB\xBF")))) == 0 {
		return kindProblem(schemas.ErrEmptyFile, "empty-file", "Empty file", "The file is empty: %s.", clause(err))
	}
	return kindProblem(schemas.ErrUnreadableFile, "unsupported-format", "Unsupported file format",
		"The file cannot be read as a product feed: %s.", clause(err))
}

// getUpload answers an upload's progress to the partner that owns it. Another
// partner's key gets the same 404 as an unknown id, so ids do not leak.
func (s *server) getUpload(c *fiber.Ctx) error {
	ctx, cancel := storeCtx(c)
	defer cancel()
	st, err := s.visibleUpload(c, ctx, c.Params("id"))
	if err != nil {
		return err
	}
	s.noteWaiting(ctx, &st)
	if st.Rejections == nil {
		st.Rejections = []schemas.Issue{}
	}
	return c.JSON(st)
}

// decided is the answer to a confirmation or cancellation.
type decided struct {
	UploadID string `json:"upload_id"`
	Decision string `json:"decision"`
}

// decideUpload confirms or cancels a held upload for the partner that owns
// it. The first decision stands; repeating it answers the same.
func (s *server) decideUpload(decision string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Params("id")
		ctx, cancel := storeCtx(c)
		defer cancel()
		st, err := s.visibleUpload(c, ctx, id)
		if err != nil {
			return err
		}
		if st.Hold == nil {
			return problem(fiber.StatusConflict, "not-held", "Upload not held",
				"Upload %s is %s, not held; only a held upload can be confirmed or cancelled.", id, st.State)
		}
		if err := s.decide(ctx, st, decision); err != nil {
			return err
		}
		return c.Status(fiber.StatusAccepted).JSON(decided{UploadID: id, Decision: decision})
	}
}

// visibleUpload reads an upload's status for the partner that owns it.
// Another partner's key gets the same 404 as an unknown id, so ids do not leak.
func (s *server) visibleUpload(c *fiber.Ctx, ctx context.Context, id string) (schemas.UploadStatus, error) {
	st, err := s.cfg.Ledger.Status(ctx, id)
	if errors.Is(err, schemas.ErrNotFound) || (err == nil && !principalOf(c).mayActFor(st.Partner)) {
		return st, notFound("No upload %q is visible to this key; check the id in the Location header of the upload's answer.", id)
	}
	if err != nil {
		return st, failed("read the upload status", err)
	}
	return st, nil
}

// decide records the first decision on a held upload and sends it to
// normalise, which closes the upload again; its message id makes a repeat
// a no-op.
func (s *server) decide(ctx context.Context, st schemas.UploadStatus, decision string) error {
	id := st.ID
	hold, err := s.cfg.Ledger.Held(ctx, id)
	if err != nil {
		return failed("read the upload's hold", err)
	}
	d, err := s.cfg.Ledger.Decide(ctx, id, schemas.DecisionRecord{Decision: decision, At: s.cfg.Now().UTC()})
	if err != nil {
		return failed("record the decision", err)
	}
	if d.Decision != decision {
		return problem(fiber.StatusConflict, "already-decided", "Upload already decided",
			"Upload %s was %sed at %s; that decision stands.", id, d.Decision, d.At.Format(time.RFC3339))
	}
	end := &schemas.RawBatch{Upload: id, Partner: st.Partner, Mode: st.Mode, MappingVersion: st.MappingVersion,
		UploadSeq: hold.UploadSeq, Batch: hold.End.Batches, ReceivedAt: st.ReceivedAt, End: &hold.End, Decision: decision}
	out, err := pipeline.Envelope(end)
	if err != nil {
		return fmt.Errorf("encode decision: %w", err)
	}
	if _, err := s.cfg.Pub.Publish(ctx, out); err != nil {
		return failed("queue the decision", err)
	}
	return nil
}

// fullReads fills every read unless the stream ends: a file store that
// stores one chunk per read then writes full chunks, not one per network read.
type fullReads struct{ r io.Reader }

func (f fullReads) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

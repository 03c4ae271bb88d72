package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

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
	mapping, err := s.currentMapping(c, partner)
	if err != nil {
		return err
	}
	maxDelete, err := s.maxDeletePercent(c, partner)
	if err != nil {
		return err
	}
	file, filename, err := uploadedFile(c)
	if err != nil {
		return err
	}
	if filename == "" {
		filename = params.filename
	}
	if limit := s.cfg.MaxFileBytes; limit > 0 && int64(c.Request().Header.ContentLength()) > limit {
		// Answer at once and close, without waiting for a body that will
		// not be read.
		bodyOf(c).err = errFileTooLarge
		return fileTooLarge(limit)
	}
	src := &trackedReader{r: &sizeLimit{r: file, left: s.cfg.MaxFileBytes}}
	br := bufio.NewReaderSize(src, headSize)
	head, _ := br.Peek(headSize) // short at the end of the file
	if errors.Is(src.err, errFileTooLarge) {
		return fileTooLarge(s.cfg.MaxFileBytes)
	}
	if src.err != nil {
		return interrupted(src.err)
	}
	kind, err := s.cfg.Detect(head, params.format, mapping.Resolve().Charset)
	if err != nil {
		return rejectedFile(head, err)
	}
	delim := kind.Delimiter
	if params.delimiter != 0 {
		delim = params.delimiter
	}

	id := s.cfg.NewID()
	size, err := s.cfg.Files.Put(c.UserContext(), id, fullReads{br})
	if errors.Is(src.err, errFileTooLarge) {
		return fileTooLarge(s.cfg.MaxFileBytes)
	}
	if src.err != nil {
		return interrupted(src.err)
	}
	if err != nil {
		return unavailable("store the file", err)
	}
	ev := schemas.UploadEvent{
		ID: id, Partner: partner, Mode: params.mode, Format: kind.Format, Compression: kind.Compression, Charset: kind.Charset,
		MappingVersion: mapping.Version, Object: id, Size: size, Filename: filename,
		ReceivedAt: s.cfg.Now().UTC(), MaxDeletePercent: maxDelete,
	}
	if delim != 0 {
		ev.Delimiter = string(delim)
	}
	if err := s.announce(c, ev); err != nil {
		s.forget(c, ev)
		return err
	}
	c.Location("/v1/uploads/" + id)
	return c.Status(fiber.StatusAccepted).JSON(uploadAccepted{UploadID: id})
}

func (s *server) currentMapping(c *fiber.Ctx, partner string) (schemas.Mapping, error) {
	ctx, cancel := storeCtx(c)
	defer cancel()
	m, err := s.cfg.Mappings.Mapping(ctx, partner, 0)
	if errors.Is(err, schemas.ErrNotFound) {
		return m, unprocessable("no-mapping", "Partner has no mapping",
			`partner %q has no mapping: PUT /v1/partners/%s/mapping first, e.g. {"preset": "google_merchant"}`, partner, partner)
	}
	if err != nil {
		return m, unavailable("read the partner's mapping", err)
	}
	return m, nil
}

// announce records the upload in the ledger and publishes it to ingest.
func (s *server) announce(c *fiber.Ctx, ev schemas.UploadEvent) error {
	ctx, cancel := storeCtx(c)
	defer cancel()
	if err := s.cfg.Ledger.Create(ctx, ev); err != nil {
		return unavailable("record the upload", err)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode upload event: %w", err)
	}
	h := nats.Header{}
	h.Set(schemas.HeaderPartner, ev.Partner)
	h.Set(schemas.HeaderUpload, ev.ID)
	if _, err := s.cfg.Pub.Publish(ctx, pipeline.Outgoing{
		Subject: schemas.Subject(schemas.SubjectUploaded, ev.Partner),
		MsgID:   ev.ID,
		Data:    data,
		Header:  h,
	}); err != nil {
		return unavailable("queue the upload for processing", err)
	}
	return nil
}

// forget removes what an upload left that was never announced; the client
// was told it failed. What a failure here leaves, the file sweep removes.
func (s *server) forget(c *fiber.Ctx, ev schemas.UploadEvent) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), storeTimeout)
	defer cancel()
	if err := s.cfg.Ledger.Discard(ctx, ev.ID); err != nil {
		s.cfg.Log.Warn("could not remove the record of an upload that was not queued", "upload", ev.ID, "err", err)
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
		return unprocessable("empty-file", "Empty file", "The file is empty: %s.", clause(err))
	}
	return problem(fiber.StatusUnsupportedMediaType, "unsupported-format", "Unsupported file format",
		"The file cannot be read as a product feed: %s.", clause(err))
}

// getUpload answers an upload's progress to the partner that owns it. Another
// partner's key gets the same 404 as an unknown id, so ids do not leak.
func (s *server) getUpload(c *fiber.Ctx) error {
	id := c.Params("id")
	who := principalOf(c)
	ctx, cancel := storeCtx(c)
	defer cancel()
	st, err := s.cfg.Ledger.Status(ctx, id)
	if errors.Is(err, schemas.ErrNotFound) || (err == nil && !who.mayActFor(st.Partner)) {
		return notFound("No upload %q is visible to this key; check the id in the Location header of the upload's answer.", id)
	}
	if err != nil {
		return unavailable("read the upload status", err)
	}
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
		st, err := s.cfg.Ledger.Status(ctx, id)
		if errors.Is(err, schemas.ErrNotFound) || (err == nil && !principalOf(c).mayActFor(st.Partner)) {
			return notFound("No upload %q is visible to this key; check the id in the Location header of the upload's answer.", id)
		}
		if err != nil {
			return unavailable("read the upload status", err)
		}
		if st.Hold == nil {
			return problem(fiber.StatusConflict, "not-held", "Upload not held",
				"Upload %s is %s, not held; only a held upload can be confirmed or cancelled.", id, st.State)
		}
		hold, err := s.cfg.Ledger.Held(ctx, id)
		if err != nil {
			return unavailable("read the upload's hold", err)
		}
		d, err := s.cfg.Ledger.Decide(ctx, id, schemas.DecisionRecord{Decision: decision, At: s.cfg.Now().UTC()})
		if err != nil {
			return unavailable("record the decision", err)
		}
		if d.Decision != decision {
			return problem(fiber.StatusConflict, "already-decided", "Upload already decided",
				"Upload %s was %sed at %s; that decision stands.", id, d.Decision, d.At.Format(time.RFC3339))
		}
		// The decision closes the upload again through normalise; its id makes a repeat a no-op.
		end := &schemas.RawBatch{Upload: id, Partner: st.Partner, Mode: st.Mode, MappingVersion: st.MappingVersion,
			UploadSeq: hold.UploadSeq, Batch: hold.End.Batches, ReceivedAt: st.ReceivedAt, End: &hold.End, Decision: decision}
		data, err := schemas.MarshalRawBatch(end)
		if err != nil {
			return fmt.Errorf("encode decision: %w", err)
		}
		h := nats.Header{}
		h.Set(schemas.HeaderPartner, st.Partner)
		h.Set(schemas.HeaderUpload, id)
		if _, err := s.cfg.Pub.Publish(ctx, pipeline.Outgoing{
			Subject: schemas.Subject(schemas.Subject(schemas.SubjectRaw, st.Partner), "decision"),
			MsgID:   schemas.MsgID("raw", id, decision),
			Data:    data,
			Header:  h,
		}); err != nil {
			return unavailable("queue the decision", err)
		}
		return c.Status(fiber.StatusAccepted).JSON(decided{UploadID: id, Decision: decision})
	}
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

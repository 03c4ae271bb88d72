package api

import (
	"bufio"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"

	"feedline/schemas"
)

// StageWatch says how far behind the stage an upload waits for is.
type StageWatch interface {
	// Waiting is the backlog of a stage: ingest, normalise or index.
	Waiting(ctx context.Context, stage string) (schemas.Waiting, error)
}

// waitTimeout bounds asking JetStream how far behind a stage is; the
// status is answered without it when it takes longer.
const waitTimeout = time.Second

// noteWaiting says, on an unfinished upload, which stage it waits for when
// that stage has not started on it yet and is behind or not running, so a
// stalled pipeline shows as such rather than as processing with no counts.
func (s *server) noteWaiting(ctx context.Context, st *schemas.UploadStatus) {
	if s.cfg.Stages == nil || schemas.Finished(st.State) {
		return
	}
	var stage string
	switch {
	case st.State == schemas.StateReceived:
		stage = "ingest"
	case st.Counts.Read == 0 && !st.Normalised:
		stage = "normalise"
	case st.Normalised && st.Counts.Indexed == 0 && st.Counts.Deleted == 0:
		stage = "index"
	default:
		return // every stage it needs has started on it
	}
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	w, err := s.cfg.Stages.Waiting(ctx, stage)
	if err != nil {
		s.cfg.Log.Debug("could not tell how far behind a stage is", "stage", stage, "err", err)
		return
	}
	if w.Running && w.Pending == 0 {
		return // it has the upload's messages in hand
	}
	st.WaitingFor, st.Waiting = stage, &w
}

// Upload list paging bounds.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// uploadListItem is an upload in a listing: its status without the
// rejected rows, which GET /v1/uploads/{id} lists.
type uploadListItem struct {
	schemas.UploadStatus
	Rejections []schemas.Issue `json:"rejections,omitempty"`
}

type uploadList struct {
	Uploads    []uploadListItem `json:"uploads"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// listUploads pages through a partner's uploads, newest first. A page reads
// the partner's upload index, not every upload there is.
func (s *server) listUploads(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	limit := defaultListLimit
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return invalidParameter("limit must be a whole number from 1 to %d, not %q.", maxListLimit, v)
		}
		limit = n
	}
	if s.cfg.Uploads == nil {
		return notServed("This server does not list uploads; ask a server running the API with its upload list.")
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	ids, next, err := s.cfg.Uploads.ListUploads(ctx, partner, c.Query("cursor"), limit)
	if errors.Is(err, schemas.ErrBadCursor) {
		return kindProblem(schemas.ErrBadCursor, "invalid-parameter", "Invalid parameter",
			"cursor %q is not one this listing handed out; start again without it.", c.Query("cursor"))
	}
	if err != nil {
		return failed("list the uploads", err)
	}
	items := make([]*uploadListItem, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			st, err := s.cfg.Ledger.Status(gctx, id)
			if errors.Is(err, schemas.ErrNotFound) {
				return nil // never announced
			}
			if err != nil {
				return err
			}
			items[i] = &uploadListItem{UploadStatus: st}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return failed("read the uploads' status", err)
	}
	out := uploadList{Uploads: []uploadListItem{}, NextCursor: next}
	for _, it := range items {
		if it != nil {
			it.UploadStatus.Rejections = nil
			out.Uploads = append(out.Uploads, *it)
		}
	}
	return c.JSON(out)
}

// cancelUpload stops an upload that has not finished: nothing more of it is
// applied. A held one is cancelled as POST …/cancel does. It answers the
// upload's status, which reports what was applied before.
func (s *server) cancelUpload(c *fiber.Ctx) error {
	id := c.Params("id")
	ctx, cancel := storeCtx(c)
	defer cancel()
	st, err := s.visibleUpload(c, ctx, id)
	if err != nil {
		return err
	}
	switch {
	case st.State == schemas.StateCancelled:
		// The first cancellation stands; repeating it answers the same.
	case st.State == schemas.StateHeld:
		if err := s.decide(ctx, st, schemas.DecisionCancel); err != nil {
			return err
		}
	case st.State == schemas.StateDone || st.State == schemas.StateFailed:
		return problem(fiber.StatusConflict, "upload-finished", "Upload finished",
			"Upload %s is %s; only an upload that has not finished can be cancelled.", id, st.State)
	case st.Normalised:
		return problem(fiber.StatusConflict, "upload-applied", "Upload applied",
			"Every row of upload %s is normalised and its changes are in the catalog; the search index is catching up, and there is nothing left to cancel.", id)
	default:
		if _, err := s.cfg.Ledger.RecordCancel(ctx, id, schemas.CancelRecord{At: s.cfg.Now().UTC()}); err != nil {
			return failed("record the cancellation", err)
		}
	}
	if st, err = s.cfg.Ledger.Status(ctx, id); err != nil {
		return failed("read the upload status", err)
	}
	if st.Rejections == nil {
		st.Rejections = []schemas.Issue{}
	}
	return c.JSON(st)
}

// retryUpload makes a new upload of a failed upload's stored file, with the
// partner's current mapping and settings: after the mapping is fixed, or a
// stage that dead-lettered it is.
func (s *server) retryUpload(c *fiber.Ctx) error {
	id := c.Params("id")
	ctx, cancel := storeCtx(c)
	defer cancel()
	st, err := s.visibleUpload(c, ctx, id)
	if err != nil {
		return err
	}
	if st.State != schemas.StateFailed {
		return problem(fiber.StatusConflict, "not-failed", "Upload not failed",
			"Upload %s is %s; only a failed upload can be retried.", id, st.State)
	}
	orig, err := s.cfg.Ledger.Upload(ctx, id)
	if err != nil {
		return failed("read the upload", err)
	}
	params := uploadParams{mode: orig.Mode, format: orig.Format, filename: orig.Filename}
	if orig.Delimiter != "" {
		params.delimiter = []rune(orig.Delimiter)[0]
	}
	in, err := s.prepare(c.UserContext(), orig.Partner, params)
	if err != nil {
		return err
	}
	in.filename, in.source, in.retryOf = orig.Filename, orig.Source, orig.ID
	file, err := s.cfg.Files.Open(ctx, orig.Object)
	if errors.Is(err, schemas.ErrNotFound) {
		s.releaseSlot(ctx, in)
		return problem(fiber.StatusGone, "file-gone", "File no longer stored",
			"The file of upload %s is no longer stored, so it cannot be processed again; upload the file again.", id)
	}
	if err != nil {
		s.releaseSlot(ctx, in)
		return failed("open the stored file", err)
	}
	head, _ := bufio.NewReaderSize(file, headSize).Peek(headSize)
	_ = file.Close()
	kind, err := s.cfg.Detect(head, params.format, in.mapping.Resolve().Charset)
	if err != nil {
		s.releaseSlot(ctx, in)
		return rejectedFile(head, err)
	}
	ev, err := s.publishUpload(c.UserContext(), &stored{intake: in, kind: kind, object: orig.Object, size: orig.Size})
	if err != nil {
		return err
	}
	c.Location("/v1/uploads/" + ev.ID)
	return c.Status(fiber.StatusAccepted).JSON(uploadAccepted{UploadID: ev.ID})
}

package api

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

// sourceView is a partner's source as GET answers it: the header values
// hidden, the schedule and the last fetch's outcome.
type sourceView struct {
	URL         string                `json:"url"`
	Every       string                `json:"every"`
	Mode        string                `json:"mode"`
	Format      string                `json:"format,omitempty"`
	Headers     []string              `json:"headers"` // names only
	NextFetchAt time.Time             `json:"next_fetch_at"`
	Fetching    bool                  `json:"fetching"`
	Failures    int                   `json:"failures"`
	LastFetch   *schemas.FetchOutcome `json:"last_fetch,omitempty"`
	LastUpload  string                `json:"last_upload_id,omitempty"`
	ETag        string                `json:"etag,omitempty"`
	Modified    string                `json:"last_modified,omitempty"`
}

func (s *server) viewSource(r schemas.SourceRecord) sourceView {
	v := sourceView{URL: redactURL(r.Source.URL), Every: r.Source.Every, Mode: r.Source.Mode, Format: r.Source.Format, Headers: []string{},
		NextFetchAt: r.NextAt, Fetching: r.Leased(s.cfg.Now()), Failures: r.Failures, LastFetch: r.Last, LastUpload: r.LastUpload,
		ETag: r.ETag, Modified: r.LastModified}
	for name := range r.Source.Headers {
		v.Headers = append(v.Headers, http.CanonicalHeaderKey(name))
	}
	sort.Strings(v.Headers)
	return v
}

func (s *server) sourcesConfigured() error {
	if s.fetch == nil {
		return notServed("This server does not fetch partner feeds; ask a server running the API with its source store.")
	}
	return nil
}

// putSource sets where and how often the partner's feed is fetched. A new
// source, or a new URL, is fetched at once.
func (s *server) putSource(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	if err := s.sourcesConfigured(); err != nil {
		return err
	}
	var src schemas.Source
	if err := readJSON(c, &src); err != nil {
		return err
	}
	every, err := src.Validate(s.fetch.cfg.MinEvery)
	if err != nil {
		var se *schemas.SourceError
		if errors.As(err, &se) {
			p := unprocessable("invalid-source", "Invalid source", "The source is not valid: %s.", strings.Join(se.Problems, "; "))
			p.errors = se.Problems
			return p
		}
		return err
	}
	src.Every = every.String()
	ctx, cancel := storeCtx(c)
	defer cancel()
	now := s.cfg.Now().UTC()
	r, _, err := s.fetch.store.UpdateSource(ctx, partner, func(r *schemas.SourceRecord, exists bool) bool {
		if !exists || r.Source.URL != src.URL {
			// A new feed: fetch it now, with nothing of the old one.
			*r = schemas.SourceRecord{Lease: r.Lease, NextAt: now}
		} else if next := now.Add(every); r.NextAt.After(next) {
			r.NextAt = next // a shorter interval takes effect now
		}
		r.Source, r.UpdatedAt = src, now
		return true
	})
	if err != nil {
		return failed("store the source", err)
	}
	return c.JSON(s.viewSource(r))
}

// getSource answers the partner's source and its last fetch.
func (s *server) getSource(c *fiber.Ctx) error {
	r, err := s.partnerSource(c)
	if err != nil {
		return err
	}
	return c.JSON(s.viewSource(r))
}

func (s *server) partnerSource(c *fiber.Ctx) (schemas.SourceRecord, error) {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return schemas.SourceRecord{}, err
	}
	if err := s.sourcesConfigured(); err != nil {
		return schemas.SourceRecord{}, err
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	r, err := s.fetch.store.Source(ctx, partner)
	if errors.Is(err, schemas.ErrNotFound) {
		return r, notFound("Partner %q has no source; PUT /v1/partners/%s/source to have its feed fetched.", partner, partner)
	}
	if err != nil {
		return r, failed("read the source", err)
	}
	return r, nil
}

// deleteSource stops fetching the partner's feed; a fetch under way ends
// as it would.
func (s *server) deleteSource(c *fiber.Ctx) error {
	if _, err := s.partnerSource(c); err != nil {
		return err
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	if err := s.fetch.store.DeleteSource(ctx, c.Params("partner")); err != nil && !errors.Is(err, schemas.ErrNotFound) {
		return failed("delete the source", err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type notModified struct {
	Status string `json:"status"`
}

// fetchSourceNow fetches the partner's feed at once, whatever its
// schedule: 202 with the new upload, or 200 when the feed has not changed.
// The fetch goes on, and is recorded, if the client goes away.
func (s *server) fetchSourceNow(c *fiber.Ctx) error {
	if _, err := s.partnerSource(c); err != nil {
		return err
	}
	partner := c.Params("partner")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), s.fetch.cfg.lease())
	defer cancel()
	rec, err := s.fetch.claim(ctx, partner, true)
	switch {
	case errors.Is(err, schemas.ErrNotFound):
		return notFound("Partner %q has no source; PUT /v1/partners/%s/source to have its feed fetched.", partner, partner)
	case errors.Is(err, errLeased):
		return problem(fiber.StatusConflict, "fetch-under-way", "Fetch under way",
			"A fetch of partner %s's feed is under way; GET /v1/partners/%s/source shows its outcome when it ends.", partner, partner)
	case err != nil:
		return failed("claim the source", err)
	}
	res := s.fetch.fetchAndSettle(ctx, rec)
	switch res.outcome.Status {
	case schemas.FetchFetched:
		c.Location("/v1/uploads/" + res.outcome.UploadID)
		return c.Status(fiber.StatusAccepted).JSON(uploadAccepted{UploadID: res.outcome.UploadID})
	case schemas.FetchNotModified:
		return c.JSON(notModified{Status: schemas.FetchNotModified})
	}
	return res.problem
}

// RunSources fetches partners' feeds on their schedules until ctx ends.
// Every API instance may run it: a source is fetched by one at a time.
func (a *App) RunSources(ctx context.Context) {
	if a.server.fetch != nil {
		a.server.fetch.run(ctx)
	}
}

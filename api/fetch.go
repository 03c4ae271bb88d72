package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"feedline/schemas"
)

// FetchConfig says how feeds are fetched from partners' servers.
type FetchConfig struct {
	// AllowPrivate lets fetches reach loopback and private addresses
	// (--fetch-allow-private); link-local ones are refused always.
	AllowPrivate bool
	// Timeout bounds one fetch, from the request to the stored file
	// (default 10 minutes).
	Timeout time.Duration
	// Concurrency is how many fetches one API instance runs at once
	// (default 16): each has its own connection and deadline, so a slow
	// server holds only its own.
	Concurrency int
	// MinEvery is the shortest interval a source may ask for (default 5
	// minutes); RetryAfter the first delay after a failure, doubled on
	// every failure in a row up to the source's interval (default 1 minute).
	MinEvery   time.Duration
	RetryAfter time.Duration
	// Tick is how often due sources are looked for (default 1 s).
	Tick time.Duration
}

func (c FetchConfig) withDefaults() FetchConfig {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.MinEvery <= 0 {
		c.MinEvery = 5 * time.Minute
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Minute
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	return c
}

// lease is how long a claimed fetch keeps its source from the other
// instances: the fetch's own deadline and a margin to record its outcome.
// Past it the holder is taken for dead and another instance fetches.
func (c FetchConfig) lease() time.Duration { return c.Timeout + min(c.Timeout, 2*time.Minute) }

// fetcher fetches partners' feeds into uploads, on schedule and on demand.
// Every API instance runs one; the source record's lease, taken with
// compare-and-set, lets only one of them fetch a source at a time.
type fetcher struct {
	s      *server
	cfg    FetchConfig
	store  schemas.SourceStore
	client *http.Client
	owner  string // this instance, in leases
	log    *slog.Logger
}

func newFetcher(s *server, store schemas.SourceStore, cfg FetchConfig) *fetcher {
	var b [8]byte
	_, _ = rand.Read(b[:])
	cfg = cfg.withDefaults()
	return &fetcher{s: s, cfg: cfg, store: store, client: newFetchClient(addressGuard{allowPrivate: cfg.AllowPrivate}),
		owner: hex.EncodeToString(b[:]), log: s.cfg.Log.With("component", "fetch")}
}

// errNotDue is a claim of a source that is not due, or that another fetch holds.
var errNotDue = errors.New("the source is not due")

// errLeased is a fetch asked for while another one runs.
var errLeased = errors.New("a fetch of the source is under way")

// claim takes the source's lease when it is due (or now, asked for by its
// partner) and no live lease holds it.
func (f *fetcher) claim(ctx context.Context, partner string, now bool) (schemas.SourceRecord, error) {
	at := f.s.cfg.Now().UTC()
	var reason error
	r, ok, err := f.store.UpdateSource(ctx, partner, func(r *schemas.SourceRecord, exists bool) bool {
		switch {
		case !exists:
			reason = schemas.ErrNotFound
		case r.Leased(at):
			reason = errLeased
		case !now && at.Before(r.NextAt):
			reason = errNotDue
		default:
			r.Lease = &schemas.SourceLease{Owner: f.owner, Until: at.Add(f.cfg.lease())}
			return true
		}
		return false
	})
	if err != nil {
		return r, err
	}
	if !ok {
		return r, reason
	}
	return r, nil
}

// fetched is what one fetch leaves for its source record.
type fetched struct {
	outcome      schemas.FetchOutcome
	etag, lastMo string
	digest       string
	problem      *problemError // what the answer to a fetch asked for now is
}

// fetchAndSettle claims nothing: it fetches a claimed source and records
// the outcome on it, releasing the lease.
func (f *fetcher) fetchAndSettle(ctx context.Context, rec schemas.SourceRecord) fetched {
	if f.s.cfg.Tracing != nil {
		// A scheduled fetch is a write nobody requested: its own trace, which
		// the upload it makes carries down the pipeline. One asked for by a
		// request continues that request's.
		var span trace.Span
		ctx, span = f.s.cfg.Tracing.Tracer("feedline/api").Start(ctx, "fetch source",
			trace.WithAttributes(attribute.String("feedline.partner", rec.Partner)))
		defer span.End()
	}
	res := f.fetch(ctx, rec)
	stopping := ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	_, ok, err := f.store.UpdateSource(sctx, rec.Partner, func(r *schemas.SourceRecord, exists bool) bool {
		if !exists || r.Lease == nil || r.Lease.Owner != f.owner {
			return false // deleted, or taken over after the lease ran out
		}
		r.Lease = nil
		if stopping {
			return true // shutting down: the next instance fetches it again
		}
		o := res.outcome
		r.Last, r.UpdatedAt = &o, o.At
		sameURL := r.Source.URL == rec.Source.URL
		every, _ := time.ParseDuration(r.Source.Every)
		switch o.Status {
		case schemas.FetchFetched, schemas.FetchNotModified:
			r.Failures = 0
			r.NextAt = o.At.Add(every)
			if sameURL {
				if res.etag != "" || res.lastMo != "" || o.Status == schemas.FetchFetched {
					r.ETag, r.LastModified = res.etag, res.lastMo
				}
				if res.digest != "" {
					r.Digest = res.digest
				}
			}
			if o.UploadID != "" {
				r.LastUpload = o.UploadID
			}
		case schemas.FetchSkipped:
			r.NextAt = o.At.Add(f.cfg.RetryAfter)
		default:
			r.Failures++
			r.NextAt = o.At.Add(backoff(f.cfg.RetryAfter, every, r.Failures))
		}
		if !sameURL {
			r.NextAt = o.At // the partner changed the URL meanwhile: fetch the new one
		}
		return true
	})
	switch {
	case err != nil:
		f.log.Error("could not record a fetch's outcome; the source is fetched again when its lease runs out", "partner", rec.Partner, "err", err)
	case !ok:
		f.log.Warn("a fetch's source was deleted or taken over meanwhile; its outcome is not recorded", "partner", rec.Partner, "status", res.outcome.Status)
	}
	return res
}

// backoff is the delay before the failures-th retry in a row: first, then
// doubled, never past the source's interval.
func backoff(first, every time.Duration, failures int) time.Duration {
	d := first
	for i := 1; i < failures && d < every; i++ {
		d *= 2
	}
	return min(d, max(every, first))
}

// fetch makes one conditional GET of the source and, for a feed that
// changed, an upload of it, through the same steps as a pushed file.
func (f *fetcher) fetch(ctx context.Context, rec schemas.SourceRecord) (res fetched) {
	start := f.s.cfg.Now().UTC()
	res.outcome = schemas.FetchOutcome{At: start}
	defer func() { res.outcome.TookMillis = f.s.cfg.Now().Sub(start).Milliseconds() }()
	fail := func(p *problemError, format string, args ...any) fetched {
		res.outcome.Status, res.outcome.Error, res.problem = schemas.FetchFailed, fmt.Sprintf(format, args...), p
		if res.problem == nil {
			res.problem = problem(http.StatusBadGateway, "fetch-failed", "Fetch failed", "%s.", res.outcome.Error)
		}
		f.log.Warn("fetch failed", "partner", rec.Partner, "url", redactURL(rec.Source.URL), "reason", res.outcome.Error)
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	src := rec.Source
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return fail(nil, "%s is not a URL a fetch can ask: %v", src.URL, err)
	}
	for k, v := range src.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "feedline-fetch/1 (+scheduled feed fetch)")
	// A new URL starts without validators (PUT clears them).
	if rec.ETag != "" {
		req.Header.Set("If-None-Match", rec.ETag)
	}
	if rec.LastModified != "" {
		req.Header.Set("If-Modified-Since", rec.LastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fail(nil, "%s", fetchReason(err, f.cfg.Timeout))
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
		resp.Body.Close()
	}()
	res.outcome.HTTPStatus = resp.StatusCode
	res.etag, res.lastMo = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	where := redactURL(resp.Request.URL.String())
	switch {
	case resp.StatusCode == http.StatusNotModified:
		res.outcome.Status = schemas.FetchNotModified
		return res
	case resp.StatusCode != http.StatusOK:
		return fail(nil, "%s answered %s", where, resp.Status)
	}
	if limit := f.s.cfg.MaxFileBytes; limit > 0 && resp.ContentLength > limit {
		return fail(asProblem(fileTooLarge(limit)), "%s is %d bytes, larger than the %d feedline accepts", where, resp.ContentLength, limit)
	}
	in, err := f.s.prepare(ctx, rec.Partner, uploadParams{mode: src.Mode, format: src.Format})
	if err != nil {
		var p *problemError
		if errors.As(err, &p) && p.kind == schemas.ErrBusy {
			res.outcome.Status, res.outcome.Error, res.problem = schemas.FetchSkipped, p.detail, p
			return res
		}
		return fail(asProblem(err), "%s", problemText(err))
	}
	in.source, in.filename = src.URL, fileNameOf(resp.Request.URL)
	sum := sha256.New()
	st, err := f.s.store(ctx, in, io.TeeReader(resp.Body, sum))
	if err != nil {
		if ctx.Err() != nil {
			return fail(nil, "%s: no complete answer within %s", where, f.cfg.Timeout)
		}
		return fail(asProblem(err), "%s: %s", where, problemText(err))
	}
	res.outcome.Bytes = st.size
	res.digest = hex.EncodeToString(sum.Sum(nil))
	if res.digest == rec.Digest {
		// The server ignored the conditional request but sent the same
		// bytes: no upload, as for a 304.
		f.s.discard(ctx, st)
		res.outcome.Status = schemas.FetchNotModified
		return res
	}
	ev, err := f.s.publishUpload(ctx, st)
	if err != nil {
		return fail(asProblem(err), "%s", problemText(err))
	}
	res.outcome.Status, res.outcome.UploadID = schemas.FetchFetched, ev.ID
	f.log.Info("feed fetched", "partner", rec.Partner, "upload", ev.ID, "bytes", st.size)
	return res
}

// fileNameOf is the last segment of a URL's path, the file name uploads show.
func fileNameOf(u *url.URL) string {
	if name := path.Base(u.Path); name != "." && name != "/" {
		return name
	}
	return u.Host
}

// redactURL hides a password in a URL meant for logs and outcomes.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

func asProblem(err error) *problemError {
	var p *problemError
	if errors.As(err, &p) {
		return p
	}
	return nil
}

// problemText is what an upload step's refusal says, for a fetch outcome.
func problemText(err error) string {
	if p := asProblem(err); p != nil {
		return clause(errors.New(p.detail))
	}
	return clause(err)
}

// run fetches every due source until ctx ends: it follows the records of
// all sources with a watch, and every tick claims those due, each fetch in
// its own goroutine, at most Concurrency at once.
func (f *fetcher) run(ctx context.Context) {
	var mu sync.Mutex
	records := map[string]schemas.SourceRecord{}
	go func() {
		for ctx.Err() == nil {
			err := f.store.WatchSources(ctx, func(r schemas.SourceRecord, deleted bool) {
				mu.Lock()
				defer mu.Unlock()
				if deleted {
					delete(records, r.Partner)
				} else {
					records[r.Partner] = r
				}
			})
			if err != nil && ctx.Err() == nil {
				f.log.Warn("watching the sources failed; watching again", "err", err)
				sleepCtx(ctx, 2*time.Second)
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, f.cfg.Concurrency)
	running := map[string]bool{}
	tick := time.NewTicker(f.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := f.s.cfg.Now().UTC()
		var due []string
		mu.Lock()
		for p, r := range records {
			if !running[p] && !now.Before(r.NextAt) && !r.Leased(now) {
				due = append(due, p)
			}
		}
		mu.Unlock()
		for _, partner := range due {
			select {
			case slots <- struct{}{}:
			default:
				continue // every slot is busy; the next tick tries again
			}
			mu.Lock()
			running[partner] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer func() {
					<-slots
					mu.Lock()
					delete(running, partner)
					mu.Unlock()
					wg.Done()
				}()
				rec, err := f.claim(ctx, partner, false)
				if err != nil {
					if !errors.Is(err, errNotDue) && !errors.Is(err, errLeased) && !errors.Is(err, schemas.ErrNotFound) && ctx.Err() == nil {
						f.log.Warn("could not claim a due source", "partner", partner, "err", err)
					}
					return
				}
				f.fetchAndSettle(ctx, rec)
			}()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package schemas

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Source is where feedline fetches a partner's feed from, and how often:
// the partner's server keeps the file, feedline pulls it (as Merchant
// Center's scheduled fetch does) instead of the partner pushing it.
type Source struct {
	URL   string `json:"url"`
	Every string `json:"every"` // a Go duration: "6h", "30m"
	Mode  string `json:"mode"`  // full or delta
	// Format names the feed's format; "" detects it.
	Format string `json:"format,omitempty"`
	// Headers are sent with every fetch (an Authorization the partner's
	// server wants). Their values are never shown again.
	Headers map[string]string `json:"headers,omitempty"`
}

// MaxSourceHeaders bounds the headers a source sends.
const MaxSourceHeaders = 20

// forbiddenHeaders are set by the fetch itself.
var forbiddenHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection", "If-None-Match", "If-Modified-Since", "Accept-Encoding", "Te", "Upgrade"}

// Validate checks a source a partner sent; minEvery is the shortest
// interval the service allows. It returns the interval.
func (s Source) Validate(minEvery time.Duration) (time.Duration, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		add(`url is missing: give the feed's http(s) address`)
	case err != nil:
		add("url %q is not a URL: %v", s.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		add("url %q: only http and https feeds are fetched", s.URL)
	case u.Host == "" || u.Hostname() == "":
		add("url %q names no host", s.URL)
	default:
		if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && ip.IsLinkLocalUnicast() {
			add("url %q is a link-local address (cloud metadata lives there); feedline never fetches from those", s.URL)
		}
	}
	every, err := time.ParseDuration(s.Every)
	switch {
	case s.Every == "":
		add(`every is missing: how often to fetch, such as "6h"`)
	case err != nil:
		add("every %q is not a duration such as 6h or 30m", s.Every)
	case every < minEvery:
		add("every %s is shorter than the %s allowed", every, minEvery)
	case every > 31*24*time.Hour:
		add("every %s is longer than 31 days", every)
	}
	if s.Mode != ModeFull && s.Mode != ModeDelta {
		add("mode %q is not full or delta", s.Mode)
	}
	if s.Format != "" && !slices.Contains(Formats, s.Format) {
		add("format %q is not one of %s; leave it out to detect the format", s.Format, strings.Join(Formats, ", "))
	}
	if len(s.Headers) > MaxSourceHeaders {
		add("%d headers: at most %d", len(s.Headers), MaxSourceHeaders)
	}
	for _, name := range sortedKeys(s.Headers) {
		canonical := http.CanonicalHeaderKey(name)
		switch {
		case !validHeaderName(name):
			add("header %q is not a valid header name", name)
		case slices.Contains(forbiddenHeaders, canonical):
			add("header %s is set by the fetch itself", canonical)
		case strings.ContainsAny(s.Headers[name], "\r\n"):
			add("header %s has a line break in its value", canonical)
		}
	}
	if len(problems) > 0 {
		return every, &SourceError{Problems: problems}
	}
	return every, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

// SourceError lists every problem of a source.
type SourceError struct{ Problems []string }

func (e *SourceError) Error() string { return strings.Join(e.Problems, "; ") }

// Fetch outcomes.
const (
	FetchFetched     = "fetched"      // a new upload was made
	FetchNotModified = "not_modified" // the server said so (304), or sent the same bytes
	FetchFailed      = "failed"       // see Error; retried with backoff
	FetchSkipped     = "skipped"      // the partner had as many uploads in flight as it may; tried again soon
)

// FetchOutcome is what one fetch did.
type FetchOutcome struct {
	At         time.Time `json:"at"`
	Status     string    `json:"status"`
	HTTPStatus int       `json:"http_status,omitempty"`
	UploadID   string    `json:"upload_id,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Error      string    `json:"error,omitempty"`
	TookMillis int64     `json:"took_ms"`
}

// SourceLease says which API instance fetches a source now, and until
// when: past it, another may take over (the holder died).
type SourceLease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// SourceRecord is a partner's source and what its fetches left: one record
// per partner, updated with compare-and-set, so every API instance sees the
// same schedule and only one fetches a source at a time.
type SourceRecord struct {
	Partner string    `json:"partner"`
	Source  Source    `json:"source"`
	NextAt  time.Time `json:"next_at"`
	// What the server said of the last fetched feed, sent back with the
	// next fetch (conditional GET), and the SHA-256 of its bytes.
	ETag         string        `json:"etag,omitempty"`
	LastModified string        `json:"last_modified,omitempty"`
	Digest       string        `json:"digest,omitempty"`
	Failures     int           `json:"failures"` // in a row; 0 after a success
	Last         *FetchOutcome `json:"last,omitempty"`
	LastUpload   string        `json:"last_upload,omitempty"`
	Lease        *SourceLease  `json:"lease,omitempty"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// Leased reports whether another fetch of the source holds it at now.
func (r SourceRecord) Leased(now time.Time) bool { return r.Lease != nil && now.Before(r.Lease.Until) }

// SourceStore keeps every partner's source record.
type SourceStore interface {
	// Source reads a partner's record; ErrNotFound when it has none.
	Source(ctx context.Context, partner string) (SourceRecord, error)
	// UpdateSource applies fn to the partner's record (the zero record
	// when there is none) with compare-and-set, retrying on a conflict;
	// fn returns false to leave it as it is. ok says whether it wrote.
	UpdateSource(ctx context.Context, partner string, fn func(r *SourceRecord, exists bool) bool) (r SourceRecord, ok bool, err error)
	DeleteSource(ctx context.Context, partner string) error // ErrNotFound when there is none
	// WatchSources calls fn with every record now and every change after,
	// deleted ones with deleted set, until ctx ends.
	WatchSources(ctx context.Context, fn func(r SourceRecord, deleted bool)) error
}

package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/connectors/natskv"
	"feedline/schemas"
	"feedline/topology"
)

// feedServer is a partner's feed server on loopback: it serves body with
// etag, answers If-None-Match, and counts what it was asked.
type feedServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	etag     string
	ignore   bool // ignore conditional requests
	status   int  // answer this instead, when set
	failures int  // answer 500 to this many requests first
	delay    time.Duration
	requests []*http.Request
	times    []time.Time
}

func newFeedServer(t *testing.T, body string) *feedServer {
	f := &feedServer{body: body, etag: `"v1"`}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Clone(context.Background()))
		f.times = append(f.times, time.Now())
		body, etag, ignore, status, delay := f.body, f.etag, f.ignore, f.status, f.delay
		if f.failures > 0 {
			f.failures--
			status = http.StatusInternalServerError
		}
		f.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			http.Error(w, "feed generator is down", status)
			return
		}
		if !ignore && r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *feedServer) set(change func(f *feedServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func (f *feedServer) asked() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

const fetchFeed = "id,title,price,currency\nF-1,Kettle,39.90,EUR\nF-2,Mug,9.50,EUR\n"

// sourcesEnv is an app with the sources bucket, fetching from loopback.
func sourcesEnv(t *testing.T, change ...func(*Config)) (*env, *conformance) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	kv, err := e.bus.KV(ctx, topology.BucketSources)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Sources = natskv.Sources{KV: kv}
	e.cfg.Uploads, e.cfg.Slots, e.cfg.MaxInFlight = e.ledger, e.ledger, 4
	e.cfg.Fetch = FetchConfig{AllowPrivate: true, Timeout: time.Second, MinEvery: time.Second, RetryAfter: 100 * time.Millisecond, Tick: 20 * time.Millisecond}
	for _, f := range change {
		f(&e.cfg)
	}
	e.app = New(e.cfg)
	return e, newConformance(t)
}

func (e *env) partnerWithMapping(t *testing.T, id string) string {
	t.Helper()
	key := e.createPartner(t, id)
	e.putMapping(t, id, key, map[string]any{"fields": map[string]string{"id": "id", "title": "title", "price": "price", "currency": "currency"}})
	return key
}

func (e *env) putSource(t *testing.T, v *conformance, partner, key string, src any, want int) response {
	t.Helper()
	return e.call(t, v, request(http.MethodPut, "/v1/partners/"+partner+"/source", key, jsonBody(src)), want)
}

func (e *env) source(t *testing.T, v *conformance, partner, key string) sourceView {
	t.Helper()
	var sv sourceView
	e.call(t, v, request(http.MethodGet, "/v1/partners/"+partner+"/source", key, nil), 200).decode(t, &sv)
	return sv
}

func (e *env) fetchNow(t *testing.T, v *conformance, partner, key string, want int) response {
	t.Helper()
	return e.call(t, v, request(http.MethodPost, "/v1/partners/"+partner+"/source/fetch", key, nil), want)
}

func TestFetchSourceNow(t *testing.T) {
	e, v := sourcesEnv(t, func(c *Config) { c.MaxFileBytes = 64 << 10 })
	ctx := context.Background()
	key := e.partnerWithMapping(t, "acme")
	other := e.createPartner(t, "other")
	srv := newFeedServer(t, fetchFeed)
	url := srv.URL + "/feeds/products.csv"

	e.call(t, v, request(http.MethodGet, "/v1/partners/acme/source", key, nil), 404)
	e.fetchNow(t, v, "acme", key, 404)
	for _, bad := range []map[string]any{
		{"url": "ftp://shop.example/feed.csv", "every": "6h", "mode": "full"},
		{"url": url, "every": "10ms", "mode": "full"},
		{"url": url, "every": "soon", "mode": "full"},
		{"url": url, "every": "6h", "mode": "sometimes"},
		{"url": url, "every": "6h", "mode": "full", "format": "xlsx"},
		{"url": url, "every": "6h", "mode": "full", "headers": map[string]string{"Host": "evil.example"}},
		{"url": "http://169.254.169.254/latest/meta-data/", "every": "6h", "mode": "full"},
	} {
		p := e.putSource(t, v, "acme", key, bad, 422).problem(t)
		if len(p.Errors) != 1 {
			t.Errorf("%v: problems %q, want one", bad, p.Errors)
		}
	}
	e.putSource(t, v, "acme", other, map[string]any{"url": url, "every": "6h", "mode": "full"}, 403)

	sv := sourceView{}
	e.putSource(t, v, "acme", key, map[string]any{"url": url, "every": "6h", "mode": "full", "headers": map[string]string{"authorization": "Bearer s3cret"}}, 200).decode(t, &sv)
	if sv.Every != "6h0m0s" || len(sv.Headers) != 1 || sv.Headers[0] != "Authorization" || sv.LastFetch != nil || sv.NextFetchAt.After(time.Now()) {
		t.Errorf("stored source %+v: want due now, header names only", sv)
	}

	// The first fetch makes an upload, exactly as a pushed file would be.
	r := e.fetchNow(t, v, "acme", key, 202)
	var acc uploadAccepted
	r.decode(t, &acc)
	ev, err := e.ledger.Upload(ctx, acc.UploadID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Source != url || ev.Filename != "products.csv" || ev.Mode != schemas.ModeFull || ev.Format != schemas.FormatCSV || ev.Size != int64(len(fetchFeed)) || ev.Object != acc.UploadID {
		t.Errorf("fetched upload recorded as %+v", ev)
	}
	checkStored(t, e, acc.UploadID, fetchFeed)
	asked := srv.asked()
	if len(asked) != 1 || asked[0].Header.Get("Authorization") != "Bearer s3cret" || asked[0].Header.Get("If-None-Match") != "" {
		t.Errorf("first request %v", asked[0].Header)
	}
	sv = e.source(t, v, "acme", key)
	if sv.LastFetch == nil || sv.LastFetch.Status != schemas.FetchFetched || sv.LastFetch.UploadID != acc.UploadID || sv.ETag != `"v1"` ||
		sv.LastUpload != acc.UploadID || sv.Fetching || time.Until(sv.NextFetchAt) < 5*time.Hour {
		t.Errorf("after the first fetch %+v", sv)
	}
	r = e.call(t, v, request(http.MethodGet, "/v1/partners/acme/source", key, nil), 200)
	if strings.Contains(string(r.body), "s3cret") {
		t.Errorf("the source shows a header value: %s", r.body)
	}

	// Unchanged: the server says 304 to the conditional GET.
	if r := e.fetchNow(t, v, "acme", key, 200); !strings.Contains(string(r.body), `"not_modified"`) {
		t.Errorf("not modified answered %s", r.body)
	}
	if got := srv.asked()[1].Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("the second fetch sent If-None-Match %q", got)
	}
	// A server that ignores conditional requests but sends the same bytes
	// makes no upload either, and leaves no file.
	srv.set(func(f *feedServer) { f.ignore = true })
	e.fetchNow(t, v, "acme", key, 200)
	if objs, _ := e.files.Store.List(ctx); len(objs) != 1 {
		t.Errorf("%d stored files after two unchanged fetches, want 1", len(objs))
	}
	// Changed: a new upload.
	srv.set(func(f *feedServer) { f.body, f.etag = fetchFeed+"F-3,Teapot,24.00,EUR\n", `"v2"` })
	e.fetchNow(t, v, "acme", key, 202).decode(t, &acc)
	checkStored(t, e, acc.UploadID, fetchFeed+"F-3,Teapot,24.00,EUR\n")
	if sv = e.source(t, v, "acme", key); sv.ETag != `"v2"` || sv.Failures != 0 {
		t.Errorf("after a change %+v", sv)
	}

	// Failures are answered 502 with the reason and recorded on the source.
	srv.set(func(f *feedServer) { f.status = http.StatusServiceUnavailable })
	p := e.fetchNow(t, v, "acme", key, 502).problem(t)
	if !strings.Contains(p.Detail, "answered 503 Service Unavailable") {
		t.Errorf("server error: %s", p.Detail)
	}
	sv = e.source(t, v, "acme", key)
	if sv.Failures != 1 || sv.LastFetch.Status != schemas.FetchFailed || sv.LastFetch.HTTPStatus != 503 || time.Until(sv.NextFetchAt) > time.Second {
		t.Errorf("after a server error %+v %+v: want one failure, retried soon", sv, sv.LastFetch)
	}
	srv.set(func(f *feedServer) { f.status, f.delay = 0, 5*time.Second })
	start := time.Now()
	if p := e.fetchNow(t, v, "acme", key, 502).problem(t); !strings.Contains(p.Detail, "no complete answer within 1s") {
		t.Errorf("slow server: %s", p.Detail)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("a fetch with a 1s timeout took %s", took)
	}
	if sv = e.source(t, v, "acme", key); sv.Failures != 2 {
		t.Errorf("failures after a timeout: %d", sv.Failures)
	}
	srv.set(func(f *feedServer) { f.delay, f.body, f.etag = 0, strings.Repeat("x", 70<<10), `"big"` })
	if p := e.fetchNow(t, v, "acme", key, 413).problem(t); !strings.Contains(p.Detail, "65536 bytes") {
		t.Errorf("too large: %s", p.Detail)
	}

	// A redirect to a link-local address (cloud metadata) is refused at
	// the connection, whatever the operator allows.
	redirect := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusFound))
	defer redirect.Close()
	e.putSource(t, v, "acme", key, map[string]any{"url": redirect.URL + "/feed.csv", "every": "6h", "mode": "full"}, 200)
	if p := e.fetchNow(t, v, "acme", key, 502).problem(t); !strings.Contains(p.Detail, "refused: address 169.254.169.254 is link-local") {
		t.Errorf("redirect to metadata: %s", p.Detail)
	}
	// A new URL starts afresh: no validators, no failures.
	if sv = e.source(t, v, "acme", key); sv.Failures != 1 || sv.ETag != "" {
		t.Errorf("after a new URL and one failure %+v", sv)
	}

	e.call(t, v, request(http.MethodDelete, "/v1/partners/acme/source", other, nil), 403)
	e.call(t, v, request(http.MethodDelete, "/v1/partners/acme/source", key, nil), 204)
	e.call(t, v, request(http.MethodDelete, "/v1/partners/acme/source", key, nil), 404)
}

// Without --fetch-allow-private a fetch reaches no loopback or private
// address, also when a name resolves to one (checked after resolution).
func TestFetchRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	e, v := sourcesEnv(t, func(c *Config) { c.Fetch.AllowPrivate = false })
	key := e.partnerWithMapping(t, "acme")
	srv := newFeedServer(t, fetchFeed)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	for _, url := range []string{srv.URL + "/feed.csv", "http://localhost" + port + "/feed.csv"} {
		e.putSource(t, v, "acme", key, map[string]any{"url": url, "every": "1h", "mode": "delta"}, 200)
		p := e.fetchNow(t, v, "acme", key, 502).problem(t)
		if !strings.Contains(p.Detail, "refused: address") || !strings.Contains(p.Detail, "--fetch-allow-private") {
			t.Errorf("%s: %s", url, p.Detail)
		}
	}
	if n := len(srv.asked()); n != 0 {
		t.Errorf("the loopback server was asked %d times", n)
	}
}

func TestAddressGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr          string
		private, open bool // allowed without and with --fetch-allow-private
	}{
		{"93.184.216.34", true, true},
		{"2606:2800:220:1:248:1893:25c8:1946", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"10.1.2.3", false, true},
		{"172.20.0.1", false, true},
		{"192.168.1.1", false, true},
		{"100.64.0.1", false, true},
		{"0.0.0.0", false, true},
		{"fd00::1", false, true},
		{"::ffff:10.0.0.1", false, true},
		{"169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"::ffff:169.254.169.254", false, false},
	} {
		ip := netip.MustParseAddr(tc.addr)
		if got := (addressGuard{}).check(ip) == nil; got != tc.private {
			t.Errorf("%s allowed = %v without private addresses, want %v", tc.addr, got, tc.private)
		}
		if got := (addressGuard{allowPrivate: true}).check(ip) == nil; got != tc.open {
			t.Errorf("%s allowed = %v with private addresses, want %v", tc.addr, got, tc.open)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {8, time.Hour}, {40, time.Hour}} {
		if got := backoff(time.Minute, time.Hour, tc.failures); got != tc.want {
			t.Errorf("backoff after %d failures = %s, want %s", tc.failures, got, tc.want)
		}
	}
	if got := backoff(time.Minute, 30*time.Second, 3); got != time.Minute {
		t.Errorf("an interval shorter than the first retry: %s", got)
	}
}

// The scheduler fetches a new source at once, retries a failing server
// with growing delays, and records every outcome.
func TestScheduledFetchRetriesWithBackoff(t *testing.T) {
	// Not in parallel: it measures the delays between retries.
	e, v := sourcesEnv(t)
	key := e.partnerWithMapping(t, "acme")
	srv := newFeedServer(t, fetchFeed)
	srv.set(func(f *feedServer) { f.failures = 3 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { e.app.RunSources(ctx); close(done) }()

	e.putSource(t, v, "acme", key, map[string]any{"url": srv.URL + "/feed.csv", "every": "1h", "mode": "full"}, 200)
	var sv sourceView
	waitFor(t, func() bool {
		sv = e.source(t, v, "acme", key)
		return sv.LastFetch != nil && sv.LastFetch.Status == schemas.FetchFetched
	})
	asked := srv.asked()
	if len(asked) != 4 || sv.Failures != 0 || sv.LastUpload == "" || time.Until(sv.NextFetchAt) < 50*time.Minute {
		t.Fatalf("%d requests, source %+v: want three failures, then a fetch", len(asked), sv)
	}
	// Retries wait 100ms, 200ms, 400ms, counted from the start of the
	// failed fetch, which comes a little before the server sees its
	// request: each gap at least the delay less that slack, and growing.
	times := requestTimes(srv)
	const slack = 25 * time.Millisecond
	for i, want := range []time.Duration{100, 200, 400} {
		gap := times[i+1].Sub(times[i])
		if gap < want*time.Millisecond-slack {
			t.Errorf("retry %d came %s after the failure before it, want about %dms or more", i+1, gap, want)
		}
		if i > 0 && gap <= times[i].Sub(times[i-1]) {
			t.Errorf("retry %d came %s after the one before, no later than the gap before it", i+1, gap)
		}
	}
	var page uploadList
	e.call(t, v, request(http.MethodGet, "/v1/partners/acme/uploads", key, nil), 200).decode(t, &page)
	if len(page.Uploads) != 1 || page.Uploads[0].Source != srv.URL+"/feed.csv" || page.Uploads[0].ID != sv.LastUpload {
		t.Errorf("uploads after the fetch: %+v", page.Uploads)
	}
	cancel()
	<-done
}

// requestTimes reads when each request reached the feed server, from the
// time the test recorded them at.
func requestTimes(f *feedServer) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times...)
}

// One partner's slow server holds only its own fetch: another partner's
// feed is fetched while it hangs.
func TestSlowServerDelaysNoOtherSource(t *testing.T) {
	t.Parallel()
	e, v := sourcesEnv(t, func(c *Config) { c.Fetch.Timeout = 3 * time.Second })
	slowKey := e.partnerWithMapping(t, "slow")
	fastKey := e.partnerWithMapping(t, "fast")
	slow := newFeedServer(t, fetchFeed)
	slow.set(func(f *feedServer) { f.delay = time.Minute })
	fast := newFeedServer(t, fetchFeed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { e.app.RunSources(ctx); close(done) }()
	e.putSource(t, v, "slow", slowKey, map[string]any{"url": slow.URL + "/feed.csv", "every": "1h", "mode": "full"}, 200)
	waitFor(t, func() bool { return len(slow.asked()) == 1 })
	e.putSource(t, v, "fast", fastKey, map[string]any{"url": fast.URL + "/feed.csv", "every": "1h", "mode": "full"}, 200)
	waitFor(t, func() bool {
		sv := e.source(t, v, "fast", fastKey)
		return sv.LastFetch != nil && sv.LastFetch.Status == schemas.FetchFetched
	})
	if sv := e.source(t, v, "slow", slowKey); !sv.Fetching || sv.LastFetch != nil {
		t.Errorf("the slow fetch ended before the fast one: %+v", sv)
	}
	// The slow one times out and is recorded as failed, to be retried.
	deadline := time.Now().Add(10 * time.Second)
	for {
		sv := e.source(t, v, "slow", slowKey)
		if sv.LastFetch != nil {
			if sv.LastFetch.Status != schemas.FetchFailed || !strings.Contains(sv.LastFetch.Error, "no complete answer within 3s") {
				t.Errorf("slow fetch outcome %+v", sv.LastFetch)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow fetch never timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}

// A lease whose holder died (it never settled) is taken over once it runs
// out, and the source is fetched by the instance that is alive.
func TestLeaseOfADeadInstanceRunsOut(t *testing.T) {
	// Not in parallel: it measures when a lease runs out.
	e, v := sourcesEnv(t)
	key := e.partnerWithMapping(t, "acme")
	srv := newFeedServer(t, fetchFeed)
	e.putSource(t, v, "acme", key, map[string]any{"url": srv.URL + "/feed.csv", "every": "1h", "mode": "full"}, 200)
	until := time.Now().Add(1500 * time.Millisecond)
	if _, ok, err := e.cfg.Sources.UpdateSource(context.Background(), "acme", func(r *schemas.SourceRecord, _ bool) bool {
		r.Lease = &schemas.SourceLease{Owner: "an-instance-that-died", Until: until}
		return true
	}); err != nil || !ok {
		t.Fatal(err)
	}
	e.fetchNow(t, v, "acme", key, 409)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { e.app.RunSources(ctx); close(done) }()
	waitFor(t, func() bool { return len(srv.asked()) == 1 })
	if now := time.Now(); now.Before(until) {
		t.Errorf("fetched %s before the lease ran out", until.Sub(now))
	}
	cancel()
	<-done
}

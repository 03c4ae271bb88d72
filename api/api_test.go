package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"

	"feedline/pipeline"
	"feedline/schemas"
)

func quietConfig() Config {
	return Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	for _, partner := range []string{"acme", "a_b-c", "x"} {
		key, hash := NewKey(partner)
		if !regexp.MustCompile(`^fl_` + partner + `_[0-9a-v]{52}$`).MatchString(key) {
			t.Errorf("key %q", key)
		}
		sum := sha256.Sum256([]byte(key))
		if hash != hex.EncodeToString(sum[:]) {
			t.Errorf("hash %q is not the hex SHA-256 of the key", hash)
		}
		if got, ok := partnerOfKey(key); !ok || got != partner {
			t.Errorf("partnerOfKey(%q) = %q, %v", key, got, ok)
		}
		if again, _ := NewKey(partner); again == key {
			t.Error("two keys are equal")
		}
	}
	for _, key := range []string{"", "fl_", "fl__abc", "acme_abc", "fl_Acme_abc", "fl_acme"} {
		if p, ok := partnerOfKey(key); ok {
			t.Errorf("partnerOfKey(%q) accepted partner %q", key, p)
		}
	}
}

// TestAuthentication covers keys that must not get through.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	acmeKey := e.createPartner(t, "acme")
	forged, _ := NewKey("acme")
	path := "/v1/partners/acme/mapping"
	for _, tc := range []struct {
		name   string
		header string
		value  string
		want   int
	}{
		{"no key", "", "", 401},
		{"forged key of an existing partner", "Authorization", "Bearer " + forged, 401},
		{"key of a partner that does not exist", "X-API-Key", "fl_ghost_" + strings.Repeat("a", 52), 401},
		{"basic auth", "Authorization", "Basic " + acmeKey, 401},
		{"bearer, any case", "Authorization", "bearer " + acmeKey, 404},
		{"X-API-Key", "X-API-Key", acmeKey, 404},
		{"admin", "X-API-Key", testAdminKey, 404},
	} {
		req := request(http.MethodGet, path, "", nil)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, r.StatusCode, tc.want, r.body)
		}
	}
}

func TestAdminRoutesNeedAdminKeyConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.AdminKey = "" })
	v := newConformance(t)
	for _, key := range []string{"", testAdminKey} {
		req := request(http.MethodPost, "/v1/partners", key, jsonBody(map[string]string{"id": "acme"}))
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != 401 || !strings.Contains(r.problem(t).Detail, "FEEDLINE_ADMIN_KEY") {
			t.Errorf("key %q: %d %s", key, r.StatusCode, r.body)
		}
	}
}

// failingPublisher fails as JetStream does when no stream answers in time.
type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, pipeline.Outgoing) (uint64, error) {
	return 0, fmt.Errorf("nats: timeout: %w", context.DeadlineExceeded)
}

// failingFiles fails every Put with err.
type failingFiles struct {
	schemas.FileStore
	err error
}

func (f failingFiles) Put(_ context.Context, _ string, r io.Reader) (int64, error) {
	_, _ = io.CopyN(io.Discard, r, 100)
	return 0, f.err
}

// TestStoreFailures checks that nothing is accepted unless stored; that
// only an outage answers 503 with Retry-After, a failure of no known kind
// 500 without it, and both log their cause under the request id without
// showing it; and that a failing analytics publish does not touch the answer.
func TestStoreFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, cause string
		change      func(*Config)
		status      int
	}{
		{"publish times out", "nats: timeout", func(c *Config) { c.Pub = failingPublisher{} }, http.StatusServiceUnavailable},
		{"files store down", "insufficient resources", func(c *Config) {
			c.Files = failingFiles{c.Files, fmt.Errorf("object store: insufficient resources: %w", schemas.ErrUnavailable)}
		}, http.StatusServiceUnavailable},
		{"files store fails unexpectedly", "invalid chunk size -1", func(c *Config) {
			c.Files = failingFiles{c.Files, errors.New("object store: invalid chunk size -1")}
		}, http.StatusInternalServerError},
	} {
		cause := tc.cause
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.change)
			v := newConformance(t)
			key := e.createPartner(t, "acme")
			e.putMapping(t, "acme", key, map[string]string{"preset": "google_merchant"})
			req := request(http.MethodPost, "/v1/partners/acme/uploads", key, strings.NewReader("id,title,price\n1,Mug,9.50\n"))
			req.Header.Set("Content-Type", "text/csv")
			r := e.send(t, req)
			v.check(t, req, r)
			retry := r.Header.Get("Retry-After")
			if r.StatusCode != tc.status || (retry != "") != (tc.status == http.StatusServiceUnavailable) {
				t.Fatalf("status %d Retry-After %q, want %d: %s", r.StatusCode, retry, tc.status, r.body)
			}
			if p := r.problem(t); strings.Contains(p.Detail, "insufficient") || strings.Contains(p.Detail, "nats") || strings.Contains(p.Detail, "chunk") {
				t.Errorf("the detail leaks the internal error: %q", p.Detail)
			}
			if !loggedFailure(e.logs.String(), cause, r.Header.Get("X-Request-ID")) {
				t.Errorf("the store failure %q was not logged under request id %q: %s", cause, r.Header.Get("X-Request-ID"), e.logs)
			}
			// What the refused upload stored is gone again; the partner's
			// upload index lists nothing.
			ctx := context.Background()
			if keys, err := e.ledger.KV.ListKeys(ctx); err == nil {
				for k := range keys.Keys() {
					if !strings.HasPrefix(k, "list.acme.") {
						t.Errorf("a refused upload left ledger key %q", k)
					}
				}
			}
			if ids, _, err := e.ledger.ListUploads(ctx, "acme", "", 10); err != nil || len(ids) != 0 {
				t.Errorf("a refused upload is listed: %v %v", ids, err)
			}
			if objs, err := e.files.Store.List(ctx); len(objs) != 0 {
				t.Errorf("a refused upload left %d stored files (%v)", len(objs), err)
			}
		})
	}

	t.Run("analytics", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Pub = failingPublisher{} })
		v := newConformance(t)
		req := request(http.MethodGet, "/v1/search?q=mug", "", nil)
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("search with analytics down: %d %s", r.StatusCode, r.body)
		}
		waitFor(t, func() bool { return strings.Contains(e.logs.String(), "search not recorded") })
	})
}

// loggedFailure reports whether logs hold an error line naming cause
// under request id.
func loggedFailure(logs, cause, id string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Level, Msg string
			RequestID  string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == "ERROR" && l.Msg == "request failed" && strings.Contains(line, cause) && id != "" && l.RequestID == id {
			return true
		}
	}
	return false
}

func TestSearchNotServed(t *testing.T) {
	t.Parallel()
	cfg := quietConfig()
	e := &env{app: New(cfg)}
	v := newConformance(t)
	for _, target := range []string{"/v1/search?q=x", "/v1/products/acme%3A1"} {
		req := request(http.MethodGet, target, "", nil)
		r := e.send(t, req)
		v.check(t, req, r)
		if r.StatusCode != http.StatusServiceUnavailable || r.problem(t).Type != ProblemType+"search-unavailable" {
			t.Errorf("%s without an index: %d %s", target, r.StatusCode, r.body)
		}
	}
}

func TestReadyzReportsWhatIsDown(t *testing.T) {
	t.Parallel()
	cfg := quietConfig()
	cfg.Ready = func(context.Context) error { return errors.New("jetstream: no responders") }
	e := &env{app: New(cfg)}
	v := newConformance(t)
	req := request(http.MethodGet, "/readyz", "", nil)
	r := e.send(t, req)
	v.check(t, req, r)
	p := r.problem(t)
	if r.StatusCode != http.StatusServiceUnavailable || p.Type != ProblemType+"not-ready" || !strings.Contains(p.Detail, "jetstream: no responders") || r.Header.Get("Retry-After") == "" {
		t.Errorf("readyz: %d %s Retry-After %q", r.StatusCode, r.body, r.Header.Get("Retry-After"))
	}
}

func TestPanicAnswersProblem(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	cfg := quietConfig()
	cfg.Log = slog.New(slog.NewJSONHandler(logs, nil))
	e := &env{app: New(cfg)}
	e.app.Get("/boom", func(*fiber.Ctx) error { panic("nil map") })
	v := newConformance(t)
	req := request(http.MethodGet, "/boom", "", nil)
	r := e.send(t, req)
	v.check(t, req, r)
	if p := r.problem(t); r.StatusCode != 500 || p.Type != ProblemType+"internal" || strings.Contains(p.Detail, "nil map") {
		t.Errorf("panic answered %d %s", r.StatusCode, r.body)
	}
	if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), "nil map") {
		t.Errorf("the panic was not logged: %s", logs)
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	cfg := quietConfig()
	cfg.Log = slog.New(slog.NewJSONHandler(logs, nil))
	e := &env{app: New(cfg)}
	r := e.send(t, request(http.MethodGet, "/v1/nothing?x=1", "", nil))
	id := r.Header.Get("X-Request-ID")
	if id == "" {
		t.Fatal("no X-Request-ID header")
	}
	var line struct {
		Msg       string `json:"msg"`
		Method    string `json:"method"`
		Path      string `json:"path"`
		Status    int    `json:"status"`
		Duration  *int64 `json:"duration"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil {
		t.Fatalf("log %q: %v", logs, err)
	}
	if line.Msg != "request" || line.Method != "GET" || line.Path != "/v1/nothing" || line.Status != 404 || line.Duration == nil || line.RequestID != id {
		t.Errorf("access log %+v, request id %s", line, id)
	}
}

func TestOpsServesHealthReadinessAndMetricsOnly(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "feedline_stage_paused{stage=\"index\"} 0\n")
	})
	app := NewOps(func(context.Context) error {
		if down.Load() {
			return errors.New("stage index has no bound consumer")
		}
		return nil
	}, metrics, slog.New(slog.NewTextHandler(io.Discard, nil)))
	get := func(path string) (int, string) {
		t.Helper()
		r, err := app.Test(request(http.MethodGet, path, "", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("healthz %d", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "feedline_stage_paused") {
		t.Errorf("metrics %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("readyz while up: %d", code)
	}
	down.Store(true)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no bound consumer") || !strings.Contains(body, ProblemType+"not-ready") {
		t.Errorf("readyz while down: %d %s", code, body)
	}
	if code, body := get("/v1/search?q=x"); code != http.StatusNotFound || !strings.Contains(body, "problem") && !strings.Contains(body, "No route") {
		t.Errorf("a worker answered an API route: %d %s", code, body)
	}
}

// failingLedger answers every status read with err.
type failingLedger struct {
	schemas.UploadLedger
	err error
}

func (l failingLedger) Status(context.Context, string) (schemas.UploadStatus, error) {
	return schemas.UploadStatus{}, l.err
}

// TestDomainFailuresAnswerTheirStatus runs each kind of domain failure a
// store may report through a handler: each answers its one status, only an
// outage asks for a retry, and nothing of the store's own words leaks.
func TestDomainFailuresAnswerTheirStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind   error
		status int
	}{
		{schemas.ErrBadCursor, 400},
		{schemas.ErrNotFound, 404},
		{schemas.ErrExists, 409},
		{schemas.ErrUnreadableFile, 415},
		{schemas.ErrEmptyFile, 422},
		{schemas.ErrColumnsMismatch, 422},
		{schemas.ErrBusy, 429},
		{schemas.ErrUnavailable, 503},
		{errors.New("index out of range"), 500},
	} {
		t.Run(tc.kind.Error(), func(t *testing.T) {
			e := newEnv(t)
			key := e.createPartner(t, "acme")
			e.app = New(func() Config {
				c := e.cfg
				c.Ledger = failingLedger{c.Ledger, fmt.Errorf("kv get upl-1 (secret-store-detail): %w", tc.kind)}
				return c
			}())
			r := e.send(t, request(http.MethodGet, "/v1/uploads/upl-1", key, nil))
			p := r.problem(t)
			if r.StatusCode != tc.status || strings.Contains(string(r.body), "secret-store-detail") {
				t.Errorf("%v: %d %s, want %d without the store's words", tc.kind, r.StatusCode, r.body, tc.status)
			}
			if retry := r.Header.Get("Retry-After"); (retry != "") != (tc.status == 503) {
				t.Errorf("%v: Retry-After %q", tc.kind, retry)
			}
			if logged := strings.Contains(e.logs.String(), "secret-store-detail"); logged != (tc.status >= 500) {
				t.Errorf("%v: cause logged %v (%s)", tc.kind, logged, p.Detail)
			}
		})
	}
}

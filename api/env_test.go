package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/connectors/decode"
	"feedline/connectors/embedsearch"
	"feedline/connectors/natskv"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

const testAdminKey = "test-admin-key"

// env is an app over real stores: an embedded JetStream and an embedded index.
type env struct {
	bus    *pipeline.Bus
	cfg    Config
	app    *App
	logs   *syncBuffer
	ledger natskv.Ledger
	files  natskv.Files
	index  *embedsearch.Index
}

// syncBuffer collects log lines written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv starts the stores and builds the app; change adjusts the config.
func newEnv(t *testing.T, change ...func(*Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		t.Fatal(err)
	}
	if err := bus.Declare(ctx, topology.Stores()); err != nil {
		t.Fatal(err)
	}
	issues, err := bus.JetStream().Stream(ctx, topology.StreamIssues)
	if err != nil {
		t.Fatal(err)
	}
	kv := func(bucket string) jetstream.KeyValue {
		b, err := bus.KV(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	objects, err := bus.Objects(ctx, topology.ObjectUploads)
	if err != nil {
		t.Fatal(err)
	}
	index, err := embedsearch.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = index.Close() })

	e := &env{bus: bus, logs: &syncBuffer{}, index: index}
	e.ledger = natskv.Ledger{KV: kv(topology.BucketUploads)}
	e.files = natskv.Files{Store: objects}
	e.cfg = Config{
		IssueRetention: topology.IssueRetention,
		AdminKey:       testAdminKey,
		Partners:       natskv.Partners{KV: kv(topology.BucketPartners)},
		Synonyms:       natskv.Partners{KV: kv(topology.BucketPartners)},
		Mappings:       natskv.Mappings{KV: kv(topology.BucketMappings)},
		Ledger:         e.ledger,
		Files:          e.files,
		Index:          index,
		Detect:         detect,
		Open:           decode.Open,
		TempDir:        t.TempDir(),
		Issues:         natskv.Issues{Stream: issues},
		Pub:            bus.Publisher(),
		Ready:          bus.Ready,
		Log:            slog.New(slog.NewJSONHandler(e.logs, nil)),
	}
	for _, f := range change {
		f(&e.cfg)
	}
	e.app = New(e.cfg)
	return e
}

// detect adapts the decoder's detection to schemas.DetectFormat.
func detect(head []byte, format, charset string) (schemas.FileKind, error) {
	d, err := decode.DetectFile(head, charset)
	if err != nil {
		return schemas.FileKind{}, err
	}
	if format != "" && format != d.Format {
		return schemas.FileKind{}, fmt.Errorf("the format given is %s but the file looks like %s", format, d.Format)
	}
	return schemas.FileKind{Format: d.Format, Delimiter: d.Delimiter, Compression: d.Compression, Charset: d.Charset}, nil
}

// response is an answer read whole.
type response struct {
	*http.Response
	body []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != contentTypeProblem {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, contentTypeProblem, r.body)
	}
	var p Problem
	r.decode(t, &p)
	if p.Status != r.StatusCode || !strings.HasPrefix(p.Type, ProblemType) || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v does not describe status %d", p, r.StatusCode)
	}
	return p
}

// request builds a request with an optional key and body.
func request(method, target, key string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req
}

func jsonBody(v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(b)
}

// send runs a request through the app in memory.
func (e *env) send(t *testing.T, req *http.Request) response {
	t.Helper()
	if req.Body != nil && req.Header.Get("Content-Type") == "" && (req.Method == http.MethodPost || req.Method == http.MethodPut) {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Response: resp, body: body}
}

// createPartner registers a partner and returns its key.
func (e *env) createPartner(t *testing.T, id string) string {
	t.Helper()
	r := e.send(t, request(http.MethodPost, "/v1/partners", testAdminKey, jsonBody(map[string]string{"id": id})))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create partner %s: %d %s", id, r.StatusCode, r.body)
	}
	var out createPartnerResponse
	r.decode(t, &out)
	return out.APIKey
}

func (e *env) putMapping(t *testing.T, partner, key string, m any) schemas.Mapping {
	t.Helper()
	r := e.send(t, request(http.MethodPut, "/v1/partners/"+partner+"/mapping", key, jsonBody(m)))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("put mapping of %s: %d %s", partner, r.StatusCode, r.body)
	}
	var out schemas.Mapping
	r.decode(t, &out)
	return out
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

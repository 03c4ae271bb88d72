// Package elasticsearch is the distributed product search backend: a
// schemas.ProductIndex on an Elasticsearch 8 cluster that gives the same
// answers as the embedded index (connectors/embedsearch) under the
// connectors/searchtest contract. It sends only what OpenSearch 2 answers
// too, and its live tests run on an OpenSearch 2.19.6 node.
//
// Reads and writes go through an alias ("products" by default) over
// versioned concrete indexes ("products-v1", "products-v2", …) created from
// the index template in schemas, so a reindex builds the next version
// beside the live one and swaps the alias in one step. Writes use external
// versioning with the change's version; deletes are tombstone documents.
// Every request passes a circuit breaker: while the cluster is failing,
// calls return schemas.ErrUnavailable at once instead of piling up.
package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	json "github.com/goccy/go-json"
	"github.com/sony/gobreaker/v2"

	"feedline/schemas"
)

// Config configures Open. Zero values take the defaults given per field.
type Config struct {
	Addresses []string // node URLs; default http://localhost:9200
	Username  string
	Password  string
	APIKey    string // base64 API key; overrides Username and Password

	// Alias is the name searches and writes go through; the concrete
	// indexes are "<Alias>-v1", "<Alias>-v2", …. Default "products".
	Alias string
	// Shards and Replicas of each new concrete index: default 1 and 0.
	Shards, Replicas int

	// Refresh is the bulk refresh parameter: "false" (default; Flush makes
	// changes searchable), "true" or "wait_for" (Apply returns once they are).
	Refresh string
	// FlushBytes sizes bulk requests (default 5 MB); FlushInterval sends a
	// partly filled one (default 1 s) though Apply flushes its own changes.
	FlushBytes    int
	FlushInterval time.Duration
	// Workers is the number of bulk requests in flight at once (default 2).
	Workers int

	// RequestTimeout bounds each request, retries included (default 30 s);
	// HealthTimeout bounds Healthy (default 2 s).
	RequestTimeout time.Duration
	HealthTimeout  time.Duration
	// MaxRetries is how often a request answered 429, 502, 503 or 504 or
	// failing in transport is retried, and how often changes a bulk request
	// answered 429 or 5xx for are sent again (default 3). RetryBackoff gives
	// the wait before retry n (from 1); default 100 ms doubling to 5 s.
	MaxRetries   int
	RetryBackoff func(attempt int) time.Duration

	// BreakerFailures consecutive failed requests open the circuit (default
	// 5); it stays open BreakerTimeout (default 30 s), then lets one probe
	// through.
	BreakerFailures int
	BreakerTimeout  time.Duration

	Transport http.RoundTripper // default: an http.Transport sized for Workers
	Logger    *slog.Logger      // default slog.Default()
}

const (
	defaultAlias          = "products"
	defaultFlushBytes     = 5 << 20
	defaultFlushInterval  = time.Second
	defaultWorkers        = 2
	defaultRequestTimeout = 30 * time.Second
	defaultHealthTimeout  = 2 * time.Second
	defaultMaxRetries     = 3
	defaultBreakerFails   = 5
	defaultBreakerTimeout = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Alias == "" {
		c.Alias = defaultAlias
	}
	if c.Refresh == "false" {
		c.Refresh = ""
	}
	if c.FlushBytes <= 0 {
		c.FlushBytes = defaultFlushBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = defaultFlushInterval
	}
	if c.Workers <= 0 {
		c.Workers = defaultWorkers
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = defaultHealthTimeout
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = defaultMaxRetries
	}
	if c.RetryBackoff == nil {
		c.RetryBackoff = exponentialBackoff
	}
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = defaultBreakerFails
	}
	if c.BreakerTimeout <= 0 {
		c.BreakerTimeout = defaultBreakerTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func exponentialBackoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(max(attempt-1, 0), 6), 5*time.Second)
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("elasticsearch: index is closed")

// Index is the Elasticsearch product index. It is safe for concurrent use.
type Index struct {
	conn   *conn
	cfg    Config
	alias  string
	target string // what requests name: the alias, or one concrete index
	log    *slog.Logger

	mu     sync.RWMutex // Apply rounds hold it shared; Close exclusively
	closed bool
	bulk   esutil.BulkIndexer

	encoders sync.Pool // *docEncoder: document buffers of finished Apply calls
}

var (
	_ schemas.ProductIndex  = (*Index)(nil)
	_ schemas.HealthChecker = (*Index)(nil)
	_ schemas.IndexFlusher  = (*Index)(nil)
)

// Open connects to the cluster, puts the index template, and creates
// "<alias>-v1" behind the alias when the alias does not exist yet. Workers
// opening at once are fine: the one that loses the creation race uses the
// index the other created.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	cfg = cfg.withDefaults()
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	ix, err := newIndex(c, cfg, cfg.Alias)
	if err != nil {
		_ = c.es.Close(ctx)
		return nil, err
	}
	if err := ix.setUp(ctx); err != nil {
		_ = ix.Close()
		return nil, err
	}
	return ix, nil
}

func newIndex(c *conn, cfg Config, target string) (*Index, error) {
	ix := &Index{conn: c, cfg: cfg, alias: cfg.Alias, target: target, log: cfg.Logger.With("index", target)}
	bulk, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		NumWorkers:    cfg.Workers,
		FlushBytes:    cfg.FlushBytes,
		FlushInterval: cfg.FlushInterval,
		Client:        c,
		Decoder:       bulkDecoder{},
		Index:         target,
		Refresh:       cfg.Refresh,
		// Only what the outcome of an item needs: the status and the error.
		FilterPath: []string{"items.*.status", "items.*.error"},
		OnError: func(_ context.Context, err error) {
			ix.log.Warn("elasticsearch bulk request failed", "err", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: bulk indexer: %w", err)
	}
	ix.bulk = bulk
	c.refs.Add(1)
	return ix, nil
}

// setUp checks the node, puts the template and makes sure the alias exists.
func (ix *Index) setUp(ctx context.Context) error {
	var info nodeInfo
	if err := ix.conn.call(ctx, esapi.InfoRequest{}, &info); err != nil {
		return fmt.Errorf("elasticsearch: node info: %w", err)
	}
	if err := info.supported(); err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	ix.log.Info("elasticsearch connected", "cluster", info.ClusterName,
		"distribution", info.distribution(), "version", info.Version.Number)

	tmpl, err := json.Marshal(NewIndexTemplate(ix.alias, ix.cfg.Shards, ix.cfg.Replicas))
	if err != nil {
		return fmt.Errorf("elasticsearch: encode template: %w", err)
	}
	err = ix.conn.call(ctx, esapi.IndicesPutIndexTemplateRequest{Name: templateName(ix.alias), Body: bytes.NewReader(tmpl)}, nil)
	if err != nil {
		return fmt.Errorf("elasticsearch: put index template: %w", err)
	}
	return ix.ensureAlias(ctx)
}

// nodeInfo is the part of the root endpoint's answer setUp reads.
type nodeInfo struct {
	ClusterName string `json:"cluster_name"`
	Version     struct {
		Number       string `json:"number"`
		Distribution string `json:"distribution"` // "opensearch" there; Elasticsearch leaves it out
	} `json:"version"`
}

func (n nodeInfo) distribution() string {
	if n.Version.Distribution == "" {
		return "elasticsearch"
	}
	return n.Version.Distribution
}

// supported accepts Elasticsearch 8 or later and OpenSearch 2 or later:
// OpenSearch answers the Elasticsearch 7.10 API, which holds every request
// the adapter sends (composable templates, external versions, cross_fields,
// search_after).
func (n nodeInfo) supported() error {
	want := 8
	if n.distribution() == "opensearch" {
		want = 2
	}
	major, _, _ := strings.Cut(n.Version.Number, ".")
	if v, err := strconv.Atoi(major); err != nil || v < want {
		return fmt.Errorf("cluster %s runs %s %s; Elasticsearch 8 or later (or OpenSearch 2 or later) is needed",
			n.ClusterName, n.distribution(), n.Version.Number)
	}
	return nil
}

func templateName(alias string) string { return "feedline-" + alias }

// Close waits for writes in progress and releases the bulk workers; the
// connection closes with the last Index sharing it (see NewVersion).
func (ix *Index) Close() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ErrClosed
	}
	ix.closed = true
	ix.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), ix.cfg.RequestTimeout)
	defer cancel()
	err := ix.bulk.Close(ctx)
	ix.conn.release()
	if err != nil {
		return fmt.Errorf("elasticsearch: close: %w", err)
	}
	return nil
}

// Flush makes every change applied so far searchable (a refresh of the
// index); the index stage calls it before acknowledging a batch.
func (ix *Index) Flush(ctx context.Context) error {
	if err := ix.conn.call(ctx, esapi.IndicesRefreshRequest{Index: []string{ix.target}}, nil); err != nil {
		return fmt.Errorf("elasticsearch: refresh %s: %w", ix.target, err)
	}
	return nil
}

// Healthy probes the cluster health; a red cluster, no answer in
// HealthTimeout, or an open circuit is an error wrapping
// schemas.ErrUnavailable. A probe that succeeds closes a half-open circuit.
func (ix *Index) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ix.cfg.HealthTimeout)
	defer cancel()
	var health struct {
		Status string `json:"status"`
	}
	if err := ix.conn.call(ctx, esapi.ClusterHealthRequest{}, &health); err != nil {
		if !errors.Is(err, schemas.ErrUnavailable) {
			// A probe that fails for any reason means: do not write now.
			err = fmt.Errorf("%w: %w", schemas.ErrUnavailable, err)
		}
		return fmt.Errorf("elasticsearch: health: %w", err)
	}
	if health.Status != "green" && health.Status != "yellow" {
		return fmt.Errorf("elasticsearch: cluster health is %q: %w", health.Status, schemas.ErrUnavailable)
	}
	return nil
}

// conn is the client shared by an Index and the versions made from it. It
// is the esapi.Transport every request goes through, so the circuit breaker
// and the request timeout cover all of them, bulk requests included.
type conn struct {
	es      *es.Client
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	timeout time.Duration
	refs    atomic.Int32 // open Index values sharing the client
}

func newConn(cfg Config) (*conn, error) {
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 2*cfg.Workers + 4 // bulk workers plus searches
		t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr = t
	}
	client, err := es.NewClient(es.Config{
		Addresses:     cfg.Addresses,
		Username:      cfg.Username,
		Password:      cfg.Password,
		APIKey:        cfg.APIKey,
		RetryOnStatus: []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
		MaxRetries:    cfg.MaxRetries,
		RetryBackoff:  cfg.RetryBackoff,
		Transport:     tr,
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: client: %w", err)
	}
	c := &conn{es: client, timeout: cfg.RequestTimeout}
	c.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:    "elasticsearch",
		Timeout: cfg.BreakerTimeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= uint32(cfg.BreakerFailures)
		},
		// A caller giving up says nothing about the cluster.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			cfg.Logger.Warn("elasticsearch circuit breaker", "from", from.String(), "to", to.String())
		},
	})
	return c, nil
}

func (c *conn) release() {
	if c.refs.Add(-1) == 0 {
		_ = c.es.Close(context.Background())
	}
}

// errServerStatus marks a response that counts as a cluster failure.
var errServerStatus = errors.New("server answered 429 or 5xx")

// Perform sends req through the circuit breaker, bounded by the request
// timeout when the caller set no deadline.
func (c *conn) Perform(req *http.Request) (*http.Response, error) {
	done, err := c.breaker.Allow()
	if err != nil {
		return nil, fmt.Errorf("%w: circuit breaker: %w", schemas.ErrUnavailable, err)
	}
	caller := req.Context()
	var cancel context.CancelFunc
	if _, ok := caller.Deadline(); !ok && c.timeout > 0 {
		var ctx context.Context
		ctx, cancel = context.WithTimeout(caller, c.timeout)
		req = req.WithContext(ctx)
	}
	res, err := c.es.Perform(req)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		if errors.Is(caller.Err(), context.Canceled) {
			done(context.Canceled)
			return nil, err
		}
		done(err)
		return nil, fmt.Errorf("%w: %w", schemas.ErrUnavailable, err)
	}
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
		done(errServerStatus)
	} else {
		done(nil)
	}
	if cancel != nil {
		res.Body = cancelOnClose{res.Body, cancel}
	}
	return res, nil
}

// open reports whether the circuit refuses requests now.
func (c *conn) open() bool { return c.breaker.State() == gobreaker.StateOpen }

// reportFailure counts a failure that no single request showed, such as
// bulk items the cluster kept refusing with 429.
func (c *conn) reportFailure(err error) {
	if done, aerr := c.breaker.Allow(); aerr == nil {
		done(err)
	}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// call runs req and decodes a 2xx body into out (when not nil). Other
// statuses become an *apiError; 429 and 5xx ones wrap schemas.ErrUnavailable.
func (c *conn) call(ctx context.Context, req esapi.Request, out any) error {
	res, err := req.Do(ctx, c)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		return readError(res)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	body := &readRecorder{r: res.Body}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		// goccy/go-json reports a failed read as the end of the input; the
		// answer broke off in transport, which is an outage, not bad JSON.
		if body.err != nil {
			return fmt.Errorf("%w: read response: %w", schemas.ErrUnavailable, body.err)
		}
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// readRecorder keeps the first error other than io.EOF its reader gave.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}

// apiError is an error answer of the cluster.
type apiError struct {
	Status int
	Type   string
	Reason string
}

func (e *apiError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("status %d", e.Status)
	}
	return fmt.Sprintf("status %d: %s: %s", e.Status, e.Type, e.Reason)
}

// Unwrap makes overload and server failures schemas.ErrUnavailable.
func (e *apiError) Unwrap() error {
	if e.Status == http.StatusTooManyRequests || e.Status >= 500 {
		return schemas.ErrUnavailable
	}
	return nil
}

// errorDetail is the "error" object of an error answer.
type errorDetail struct {
	Type     string       `json:"type"`
	Reason   string       `json:"reason"`
	CausedBy *errorDetail `json:"caused_by"`
}

func readError(res *esapi.Response) error {
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &apiError{Status: res.StatusCode}
	var parsed struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &parsed) == nil && len(parsed.Error) > 0 {
		var detail errorDetail
		if json.Unmarshal(parsed.Error, &detail) == nil && detail.Type != "" {
			e.Type, e.Reason = detail.Type, detail.Reason
			// The innermost cause says what to fix ("unknown filter type
			// [cjk_bigram]" under "failed to build analyzer").
			cause := detail.CausedBy
			for cause != nil && cause.CausedBy != nil {
				cause = cause.CausedBy
			}
			if cause != nil && cause.Type != "" {
				e.Reason += " (caused by " + cause.Type + ": " + cause.Reason + ")"
			}
		} else {
			var s string
			_ = json.Unmarshal(parsed.Error, &s)
			e.Reason = s
		}
	}
	return e
}

func isType(err error, typ string) bool {
	var e *apiError
	return errors.As(err, &e) && e.Type == typ
}

func isStatus(err error, status int) bool {
	var e *apiError
	return errors.As(err, &e) && e.Status == status
}

// bulkDecoder reads bulk responses with the faster JSON codec.
type bulkDecoder struct{}

func (bulkDecoder) UnmarshalFromReader(r io.Reader, out *esutil.BulkIndexerResponse) error {
	return json.NewDecoder(r).Decode(out)
}

// Package api is feedline's HTTP API: partners and their mappings, file
// uploads, upload status, product search, health and the OpenAPI document.
// Every write is stored and acknowledged by JetStream before it is answered;
// every error is an RFC 9457 problem document.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"feedline/pipeline"
	"feedline/schemas"
)

// Config wires the API to its stores.
type Config struct {
	AdminKey string // FEEDLINE_ADMIN_KEY; empty disables the admin routes
	Partners schemas.PartnerStore
	Mappings schemas.MappingStore
	Ledger   schemas.UploadLedger
	Files    schemas.FileStore
	Index    schemas.ProductIndex // nil when this process serves no search
	Prices   schemas.PriceHistory // nil when this process reads no analytics store
	// Currency (ISO 4217) is what a search filtering or sorting by price
	// compares in when the request names none; "" means DefaultCurrency.
	// The caller validates it at start (schemas.CurrencyCode); New logs
	// one it refuses and uses DefaultCurrency.
	Currency string
	Detect   schemas.DetectFormat
	Open     schemas.OpenDecoder // reads a mapping preview's sample
	TempDir  string              // where a previewed zip or Parquet sample is spooled; default os.TempDir()
	Issues   schemas.IssueLog    // every issue of every upload
	// Synonyms keeps the partners' synonym lists; nil leaves their routes
	// answering 503 and searches with the global list only.
	Synonyms schemas.SynonymStore
	// GlobalSynonyms apply to every product's search (--synonyms).
	GlobalSynonyms schemas.SynonymList
	// IssueRetention is how long the issue log keeps a list, for the
	// answer that one is gone.
	IssueRetention time.Duration
	Pub            pipeline.Publisher // waits for the JetStream acknowledgement
	Ready          func(ctx context.Context) error
	Metrics        http.Handler // default: the Prometheus default registry
	Log            *slog.Logger
	NewID          func() string // time-ordered unique ids; default lower-case ULID
	Now            func() time.Time
	Body           BodyLimits // how slowly a request body may arrive
	// MaxFileBytes refuses an upload larger than this (413); 0 accepts any size.
	MaxFileBytes int64
	// Uploads lists a partner's uploads; Slots with MaxInFlight bounds
	// the uploads a partner has received or processing at once (429
	// beyond); 0 is no bound.
	Uploads     schemas.UploadList
	Slots       schemas.UploadSlots
	MaxInFlight int
	// Stages tells an unfinished upload's status which stage it waits for.
	Stages StageWatch
	// Sources keeps the partners' feeds fetched on a schedule, Fetch how;
	// nil Sources leaves the source routes answering 503.
	Sources schemas.SourceStore
	Fetch   FetchConfig
	// MaxDeletePercent holds a full upload that would delete more than this
	// share of its partner's live products, unless the partner set its own;
	// 0 means schemas.DefaultMaxDeletePercent, 100 never holds.
	MaxDeletePercent int

	// The news feed; nil Feed leaves its routes out.
	TokenKey []byte // FEEDLINE_TOKEN_KEY: verifies shopper tokens
	Feed     FeedReader
	Social   schemas.FeedStore
	Posts    schemas.PostStore
	Requests schemas.IdempotentRequests
	// TokenMaxLifetime refuses a shopper token valid for longer, from now
	// or from its issue; 0 means DefaultTokenMaxLifetime.
	TokenMaxLifetime time.Duration

	// Tracing, when set, starts a trace for every write; nil traces nothing.
	Tracing trace.TracerProvider
	// HTTPMetrics, when set, counts requests by route and status.
	HTTPMetrics *HTTPMetrics
}

// FeedReader answers feed and list pages (the fan-out stage's read side).
type FeedReader interface {
	Feed(ctx context.Context, reader, cursor string, limit int) (schemas.FeedPage, error)
	UserPosts(ctx context.Context, user, cursor string, limit int) (schemas.FeedPage, error)
	Followers(ctx context.Context, author, cursor string, limit int) (schemas.FollowPage, error)
	Following(ctx context.Context, user, cursor string, limit int) (schemas.FollowPage, error)
}

// requestHeadLimit bounds a request's line and headers together (the
// server's read buffer, fasthttp's default size).
const requestHeadLimit = 4096

// storeTimeout bounds one call to a small store (key-value, publish).
const storeTimeout = 10 * time.Second

// analyticsTimeout bounds publishing a search event after the answer.
const analyticsTimeout = 2 * time.Second

// Keys of per-request values.
type localKey int

const (
	principalKey localKey = iota
	bodyKey
	requestIDKey
	shopperKey
	idempotentIDKey
	bodyLimitsKey
)

type server struct {
	cfg      Config
	reads    *readLog
	fetch    *fetcher // nil without a source store
	synonyms *synonymLists
}

// App is the Fiber app serving every route.
type App struct {
	*fiber.App
	server *server
}

// ShutdownWithContext stops serving, letting requests in flight finish
// until ctx ends, then publishes (within ctx) the feed reads gathered for
// analytics, which would otherwise wait for a timer the process does not
// outlive.
func (a *App) ShutdownWithContext(ctx context.Context) error {
	err := a.App.ShutdownWithContext(ctx)
	if a.server.reads != nil {
		a.server.reads.flush(ctx)
	}
	return err
}

// Shutdown is ShutdownWithContext without a deadline.
func (a *App) Shutdown() error { return a.ShutdownWithContext(context.Background()) }

// ShutdownWithTimeout is ShutdownWithContext with a deadline of d.
func (a *App) ShutdownWithTimeout(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return a.ShutdownWithContext(ctx)
}

// Listener serves the app on ln. Its connections tell a chunked body that
// ended from one whose client went away; serve the app only this way.
func (a *App) Listener(ln net.Listener) error { return a.App.Listener(watchedListener{ln}) }

// New builds the app serving every route. Request bodies are streamed:
// an upload of any size goes to the file store without being held in memory.
func New(cfg Config) *App {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.NewID == nil {
		cfg.NewID = func() string { return strings.ToLower(ulid.Make().String()) }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = promhttp.Handler()
	}
	cfg.Body = cfg.Body.WithDefaults()
	if cfg.MaxDeletePercent <= 0 {
		cfg.MaxDeletePercent = schemas.DefaultMaxDeletePercent
	}
	if cfg.TokenMaxLifetime <= 0 {
		cfg.TokenMaxLifetime = DefaultTokenMaxLifetime
	}
	if code, ok := schemas.CurrencyCode(cfg.Currency); ok {
		cfg.Currency = code
	} else {
		if cfg.Currency != "" {
			cfg.Log.Error("search currency is not an ISO 4217 code; using the default", slog.String("currency", cfg.Currency), slog.String("default", DefaultCurrency))
		}
		cfg.Currency = DefaultCurrency
	}
	s := &server{cfg: cfg, reads: &readLog{pub: cfg.Pub, log: cfg.Log}, synonyms: newSynonymLists(cfg.GlobalSynonyms)}
	if cfg.Sources != nil {
		s.fetch = newFetcher(s, cfg.Sources, cfg.Fetch)
	}

	app := fiber.New(fiber.Config{
		AppName:               "feedline",
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// Streaming hands the handler the body as it arrives, whatever its
		// size, so BodyLimit refuses nothing: JSON routes bound their bodies
		// themselves (maxJSONBody) and uploads have no limit.
		StreamRequestBody: true,
		// Otherwise a multipart body is parsed, and spooled, before the handler runs.
		DisablePreParseMultipartForm: true,
		// Values outlive handlers (analytics goroutine), so they must not alias request buffers.
		Immutable: true,
		// Feed and search pages are mostly JSON encoding; goccy/go-json
		// writes the same documents several times faster.
		JSONEncoder: gojson.Marshal,
		// Bounds the request line and headers; a body's reads are bounded
		// by cfg.Body instead, so a long upload is not cut.
		ReadTimeout:    cfg.Body.Idle,
		ReadBufferSize: requestHeadLimit,
		IdleTimeout:    2 * time.Minute,
	})
	app.Use(
		func(c *fiber.Ctx) error { c.Locals(bodyLimitsKey, cfg.Body); return c.Next() },
		requestid.New(requestid.Config{Generator: cfg.NewID, ContextKey: requestIDKey}),
		s.observe,
		s.accessLog,
		recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: s.logPanic}),
	)

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(cfg.Metrics))
	app.Get("/openapi.json", s.openAPI)
	app.Get("/docs", s.docs)

	app.Post("/v1/partners", s.requireAdmin, s.createPartner)
	app.Put("/v1/partners/:partner/mapping", s.requirePartner, s.putMapping)
	app.Get("/v1/partners/:partner/mapping", s.requirePartner, s.getMapping)
	app.Post("/v1/partners/:partner/mapping/preview", s.requirePartner, s.previewMapping)
	app.Post("/v1/partners/:partner/uploads", s.requirePartner, s.createUpload)
	app.Get("/v1/partners/:partner/uploads", s.requirePartner, s.listUploads)
	app.Put("/v1/partners/:partner/source", s.requirePartner, s.putSource)
	app.Get("/v1/partners/:partner/source", s.requirePartner, s.getSource)
	app.Delete("/v1/partners/:partner/source", s.requirePartner, s.deleteSource)
	app.Post("/v1/partners/:partner/source/fetch", s.requirePartner, s.fetchSourceNow)
	app.Get("/v1/partners/:partner/settings", s.requirePartner, s.getSettings)
	app.Put("/v1/partners/:partner/settings", s.requirePartner, s.putSettings)
	app.Get("/v1/partners/:partner/synonyms", s.requirePartner, s.getSynonyms)
	app.Put("/v1/partners/:partner/synonyms", s.requirePartner, s.putSynonyms)
	app.Get("/v1/uploads/:id", s.requireKey, s.getUpload)
	app.Get("/v1/uploads/:id/issues", s.requireKey, s.uploadIssues)
	app.Post("/v1/uploads/:id/confirm", s.requireKey, s.decideUpload(schemas.DecisionConfirm))
	app.Post("/v1/uploads/:id/cancel", s.requireKey, s.decideUpload(schemas.DecisionCancel))
	app.Delete("/v1/uploads/:id", s.requireKey, s.cancelUpload)
	app.Post("/v1/uploads/:id/retry", s.requireKey, s.retryUpload)

	app.Get("/v1/search", s.search)
	app.Get("/v1/suggest", s.suggest)
	app.Get("/v1/products/:id", s.getProduct)
	app.Get("/v1/products/:id/prices", s.productPrices)
	s.socialRoutes(app)
	return &App{App: app, server: s}
}

// accessLog writes one structured line per request. It runs the error
// handler itself so the line carries the status the client received.
func (s *server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	finishBody(c)
	status := c.Response().StatusCode()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.cfg.Log.LogAttrs(c.UserContext(), level, "request",
		slog.String("method", c.Method()),
		slog.String("path", c.Path()),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.Any("request_id", c.Locals(requestIDKey)),
	)
	return nil
}

func (s *server) logPanic(c *fiber.Ctx, v any) {
	s.cfg.Log.ErrorContext(c.UserContext(), "handler panicked",
		slog.String("path", c.Path()), slog.Any("request_id", c.Locals(requestIDKey)),
		slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
}

// storeCtx bounds a call to a small store by storeTimeout.
func storeCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), storeTimeout)
}

package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"feedline/schemas"
)

// openAPIDocument describes every route; tests hold it to the real routes and answers.
//
//go:embed openapi.json
var openAPIDocument []byte

// docsPage renders openapi.json in the browser without anything from the network.
//
//go:embed docs.html
var docsPage []byte

// readyTimeout bounds the readiness check.
const readyTimeout = 2 * time.Second

type healthStatus struct {
	Status string `json:"status"`
}

func (s *server) healthz(c *fiber.Ctx) error {
	return c.JSON(healthStatus{Status: "ok"})
}

// readyz reports whether the backing services answer, for load balancers.
// Not ready is an outage like any other: a problem whose detail names what
// does not answer, for the operator, with Retry-After.
func (s *server) readyz(c *fiber.Ctx) error {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			return kindProblem(schemas.ErrUnavailable, "not-ready", "Not ready", "%s", sentence(err.Error()))
		}
	}
	return c.JSON(healthStatus{Status: "ready"})
}

func (s *server) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openAPIDocument)
}

func (s *server) docs(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(docsPage)
}

// NewOps is the HTTP face of a worker that does not serve the API: health,
// readiness and metrics, so every process can be probed and scraped alike.
func NewOps(ready func(ctx context.Context) error, metrics http.Handler, log *slog.Logger) *App {
	if log == nil {
		log = slog.Default()
	}
	s := &server{cfg: Config{Ready: ready, Metrics: metrics, Log: log}}
	app := fiber.New(fiber.Config{AppName: "feedline", DisableStartupMessage: true, ErrorHandler: s.handleError})
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(metrics))
	return &App{App: app, server: s}
}

package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ProblemType prefixes the slug that names each kind of problem.
const ProblemType = "https://feedline.dev/problems/"

// contentTypeProblem is the media type of every error answer (RFC 9457).
const contentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem document. Errors lists the individual
// problems when there are several (an invalid mapping).
type Problem struct {
	Type     string   `json:"type"`
	Title    string   `json:"title"`
	Status   int      `json:"status"`
	Detail   string   `json:"detail"`
	Instance string   `json:"instance"`
	Errors   []string `json:"errors,omitempty"`
}

// problemError is an error a handler returns to answer with a problem.
type problemError struct {
	status int
	slug   string
	title  string
	detail string
	errors []string
	// retryable problems (a store is down) carry a Retry-After header of
	// retryAfter seconds (default 5).
	retryable  bool
	retryAfter int
	cause      error // logged, never shown to the client
}

func (p *problemError) Error() string { return p.title + ": " + p.detail }

func problem(status int, slug, title, format string, args ...any) *problemError {
	return &problemError{status: status, slug: slug, title: title, detail: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *problemError {
	return problem(http.StatusBadRequest, "bad-request", "Bad request", format, args...)
}

func invalidParameter(format string, args ...any) *problemError {
	return problem(http.StatusBadRequest, "invalid-parameter", "Invalid parameter", format, args...)
}

func unauthorized(format string, args ...any) *problemError {
	return problem(http.StatusUnauthorized, "unauthorized", "Missing or unknown API key", format, args...)
}

func forbidden(format string, args ...any) *problemError {
	return problem(http.StatusForbidden, "forbidden", "Key not allowed here", format, args...)
}

func notFound(format string, args ...any) *problemError {
	return problem(http.StatusNotFound, "not-found", "Not found", format, args...)
}

func bodyTooLarge(limit int) *problemError {
	return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
		"The request body is larger than %d bytes; send a smaller document.", limit)
}

func unprocessable(slug, title, format string, args ...any) *problemError {
	return problem(http.StatusUnprocessableEntity, slug, title, format, args...)
}

// unavailable answers a failure of a backing store. The cause goes to the
// log, not to the client; the client is told to retry.
func unavailable(what string, cause error) *problemError {
	p := problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
		"Could not %s because a backing service is unavailable; retry in a few seconds.", what)
	p.retryable = true
	p.cause = cause
	return p
}

// fromFiberError turns the router's and the HTTP server's own errors into problems.
func fromFiberError(c *fiber.Ctx, e *fiber.Error) *problemError {
	switch e.Code {
	case fiber.StatusNotFound:
		return notFound("No route serves %s %s; the routes are listed at /docs.", c.Method(), c.Path())
	case fiber.StatusMethodNotAllowed:
		return problem(e.Code, "method-not-allowed", "Method not allowed",
			"%s %s is not served; the methods this path allows are listed at /docs.", c.Method(), c.Path())
	case fiber.StatusRequestEntityTooLarge:
		return problem(e.Code, "body-too-large", "Request body too large", "The request body is too large; send a smaller one.")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return problem(e.Code, "headers-too-large", "Request headers too large", "The request headers are too large; send fewer or shorter headers.")
	case fiber.StatusRequestTimeout:
		return problem(e.Code, "timeout", "Request timeout", "The request was not received in time; send it again.")
	}
	if e.Code >= 500 {
		p := internal()
		p.cause = e
		return p
	}
	return problem(e.Code, slugOf(e.Code), http.StatusText(e.Code), "%s", sentence(e.Message))
}

func internal() *problemError {
	return problem(http.StatusInternalServerError, "internal", "Internal server error",
		"The server failed to answer this request; retry, and report it with the X-Request-ID header if it persists.")
}

// slugOf derives a slug from a status text ("Bad Request" -> "bad-request").
func slugOf(status int) string {
	b := []byte(http.StatusText(status))
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == ' ':
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "error"
	}
	return string(b)
}

func sentence(s string) string {
	if s == "" {
		return "The request could not be served."
	}
	if last := s[len(s)-1]; last != '.' && last != '!' && last != '?' {
		s += "."
	}
	return s
}

// handleError is the app's ErrorHandler: every error leaves as problem+json.
func (s *server) handleError(c *fiber.Ctx, err error) error {
	var p *problemError
	var fe *fiber.Error
	switch {
	case errors.As(err, &p):
	case errors.As(err, &fe):
		p = fromFiberError(c, fe)
	default:
		p = internal()
		p.cause = err
	}
	if p.cause != nil {
		s.cfg.Log.ErrorContext(c.UserContext(), "request failed",
			slog.String("method", c.Method()), slog.String("path", c.Path()),
			slog.Any("request_id", c.Locals(requestIDKey)), slog.Int("status", p.status), slog.Any("err", p.cause))
	}
	if p.retryable || p.retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(p.retryAfter, 5)))
	}
	return c.Status(p.status).JSON(Problem{
		Type:     ProblemType + p.slug,
		Title:    p.title,
		Status:   p.status,
		Detail:   p.detail,
		Instance: c.Path(),
		Errors:   p.errors,
	}, contentTypeProblem)
}

// clause spells an error for the middle of a sentence.
func clause(err error) string {
	return strings.TrimRight(err.Error(), ". ")
}

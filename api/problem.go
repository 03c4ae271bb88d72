package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"feedline/pipeline"
	"feedline/schemas"
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
	kind   error // the domain failure answered (schemas.KindOf), if any
	slug   string
	title  string
	detail string
	errors []string
	// retryAfter, in seconds, goes in a Retry-After header; an outage
	// (kind schemas.ErrUnavailable) always carries one (default 5).
	retryAfter int
	cause      error // logged, never shown to the client
}

func (p *problemError) Error() string { return p.title + ": " + p.detail }

func problem(status int, slug, title, format string, args ...any) *problemError {
	return &problemError{status: status, slug: slug, title: title, detail: fmt.Sprintf(format, args...)}
}

// answer is how one kind of domain failure is answered.
type answer struct {
	status      int
	slug, title string
}

// answerTo is the one table from the domain's failures to HTTP. An outage
// is the only answer that asks the client to retry; a failure of no known
// kind is the server's own, 500.
func answerTo(kind error) answer {
	switch kind {
	case schemas.ErrBadCursor:
		return answer{http.StatusBadRequest, "invalid-parameter", "Invalid parameter"}
	case schemas.ErrNotFound:
		return answer{http.StatusNotFound, "not-found", "Not found"}
	case schemas.ErrExists:
		return answer{http.StatusConflict, "exists", "Already exists"}
	case schemas.ErrUnreadableFile:
		return answer{http.StatusUnsupportedMediaType, "unsupported-format", "Unsupported file format"}
	case schemas.ErrEmptyFile:
		return answer{http.StatusUnprocessableEntity, "empty-file", "Empty file"}
	case schemas.ErrColumnsMismatch:
		return answer{http.StatusUnprocessableEntity, "columns-mismatch", "Columns do not fit the mapping"}
	case schemas.ErrBusy:
		return answer{http.StatusTooManyRequests, "busy", "Too many requests"}
	case schemas.ErrUnavailable:
		return answer{http.StatusServiceUnavailable, "unavailable", "Service unavailable"}
	}
	return answer{http.StatusInternalServerError, "internal", "Internal server error"}
}

// kindOf is the domain failure err is. JetStream briefly unable to answer
// (no responders, a timeout, a leader election) is the outage it is: the
// NATS-backed stores and the publisher report it unmarked.
func kindOf(err error) error {
	if k := schemas.KindOf(err); k != nil {
		return k
	}
	if pipeline.Transient(err) {
		return schemas.ErrUnavailable
	}
	return nil
}

// kindProblem answers a domain failure with the handler's own words; its
// status is the table's.
func kindProblem(kind error, slug, title, format string, args ...any) *problemError {
	p := problem(answerTo(kind).status, slug, title, format, args...)
	p.kind = kind
	return p
}

// failed answers err, met trying to what, by the kind of failure it is.
// The cause is logged when the answer is the server's fault (5xx) and
// never shown: the client learns the kind only.
func failed(what string, err error) *problemError {
	kind := kindOf(err)
	a := answerTo(kind)
	p := &problemError{status: a.status, kind: kind, slug: a.slug, title: a.title, cause: err}
	switch kind {
	case nil:
		p.detail = internalDetail
	case schemas.ErrUnavailable:
		p.detail = fmt.Sprintf("Could not %s because a backing service is unavailable; retry in a few seconds.", what)
	default:
		p.detail = fmt.Sprintf("Could not %s: %s.", what, kind)
	}
	return p
}

// notServed answers a route this server is not configured for. It is no
// outage: retrying the same server cannot help.
func notServed(format string, args ...any) *problemError {
	return problem(http.StatusServiceUnavailable, "not-served", "Not served here", format, args...)
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
	return kindProblem(schemas.ErrNotFound, "not-found", "Not found", format, args...)
}

func bodyTooLarge(limit int) *problemError {
	return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
		"The request body is larger than %d bytes; send a smaller document.", limit)
}

func unprocessable(slug, title, format string, args ...any) *problemError {
	return problem(http.StatusUnprocessableEntity, slug, title, format, args...)
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
		// The request line and headers share one buffer; say which did not fit.
		if conn, ok := c.Context().Conn().(*watchedConn); ok && !conn.requestLineEnded() {
			return problem(fiber.StatusRequestURITooLong, "uri-too-long", "Request URI too long",
				"The request line is longer than the %d bytes the server reads; send a shorter path and query.", requestHeadLimit)
		}
		return problem(e.Code, "headers-too-large", "Request headers too large",
			"The request line and headers are longer than the %d bytes the server reads; send fewer or shorter headers.", requestHeadLimit)
	case fiber.StatusRequestTimeout:
		return problem(e.Code, "timeout", "Request timeout", "The request was not received in time; send it again.")
	}
	if e.Code >= 500 {
		return failed("answer this request", e)
	}
	return problem(e.Code, slugOf(e.Code), http.StatusText(e.Code), "%s", sentence(e.Message))
}

// internalDetail is all a client learns of a failure of the server's own.
const internalDetail = "The server failed to answer this request; report it with the X-Request-ID header if it persists."

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
		p = failed("answer this request", err)
	}
	if p.cause != nil && p.status >= 500 {
		s.cfg.Log.ErrorContext(c.UserContext(), "request failed",
			slog.String("method", c.Method()), slog.String("path", c.Path()),
			slog.Any("request_id", c.Locals(requestIDKey)), slog.Int("status", p.status), slog.Any("err", p.cause))
	}
	switch {
	case p.kind == schemas.ErrUnavailable:
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(p.retryAfter, 5)))
	case p.retryAfter > 0:
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.retryAfter))
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

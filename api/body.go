package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// maxJSONBody bounds the JSON documents the API accepts (partners, mappings).
const maxJSONBody = 1 << 20

// drainLimit is how much of an unread request body is discarded to keep the
// connection; a longer remainder closes the connection instead.
const drainLimit = 64 << 10

// trackedReader remembers whether a stream reached its end or failed; the
// request body is one, so the app knows whether a handler read it all.
type trackedReader struct {
	r   io.Reader
	eof bool
	err error
}

func (b *trackedReader) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// bodyOf returns the request's body reader, the same one on every call.
// A streamed body is read through a wholeBody, so a body cut short or
// trickling in fails instead of ending early.
func bodyOf(c *fiber.Ctx) *trackedReader {
	if b, ok := c.Locals(bodyKey).(*trackedReader); ok {
		return b
	}
	var r io.Reader = bytes.NewReader(nil)
	if s := c.Context().RequestBodyStream(); s != nil {
		limits, _ := c.Locals(bodyLimitsKey).(BodyLimits)
		conn, _ := c.Context().Conn().(*watchedConn)
		r = &wholeBody{r: s, declared: int64(c.Request().Header.ContentLength()), conn: conn, limits: limits, start: time.Now()}
	} else if len(c.Request().Body()) > 0 {
		r = bytes.NewReader(c.Request().Body())
	}
	b := &trackedReader{r: r}
	c.Locals(bodyKey, b)
	return b
}

// BodyLimits bound how slowly a client may send a request body, so a
// stalled or trickling client cannot hold an upload open for ever.
type BodyLimits struct {
	// Idle fails a body when no byte arrives for this long (default 30 s).
	Idle time.Duration
	// MinRate fails a body that, after its first Idle, averages fewer bytes
	// a second than this (default 1024).
	MinRate int64
}

// WithDefaults fills what is unset.
func (l BodyLimits) WithDefaults() BodyLimits {
	if l.Idle <= 0 {
		l.Idle = 30 * time.Second
	}
	if l.MinRate <= 0 {
		l.MinRate = 1024
	}
	return l
}

// errBodyCut is a request body that ended before it was whole.
var errBodyCut = errors.New("the request body was cut short")

// wholeBody reads a streamed request body and fails it when it did not
// arrive whole. fasthttp ends a Content-Length body the client abandoned,
// and a chunked body without its last chunk, with a plain io.EOF.
type wholeBody struct {
	r        io.Reader
	declared int64        // Content-Length; -1 when chunked
	conn     *watchedConn // nil when the app was not served by App.Listener
	limits   BodyLimits
	start    time.Time
	n        int64
}

func (b *wholeBody) Read(p []byte) (int, error) {
	if b.conn != nil {
		_ = b.conn.SetReadDeadline(time.Now().Add(b.limits.Idle))
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case errors.Is(err, io.EOF) && b.declared >= 0 && b.n < b.declared:
		err = fmt.Errorf("%w: it ended after %d of the %d bytes its Content-Length declared", errBodyCut, b.n, b.declared)
	case errors.Is(err, io.EOF) && b.declared < 0 && (b.conn == nil || b.conn.closed.Load()):
		// Without the connection to ask, a chunked end cannot be trusted.
		err = fmt.Errorf("%w: the connection ended before the last chunk of the chunked body", errBodyCut)
	case isTimeout(err):
		err = fmt.Errorf("%w: no data arrived for %s", errBodyCut, b.limits.Idle)
	case err == nil:
		if elapsed := time.Since(b.start); elapsed > b.limits.Idle && float64(b.n) < float64(b.limits.MinRate)*elapsed.Seconds() {
			err = fmt.Errorf("%w: it arrived at %.0f bytes a second, slower than the %d allowed", errBodyCut, float64(b.n)/elapsed.Seconds(), b.limits.MinRate)
		}
	}
	if err != nil && b.conn != nil {
		_ = b.conn.SetReadDeadline(time.Time{})
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// watchedListener hands out connections that remember whether the client
// closed its side, which tells a chunked body's end from a dropped client.
type watchedListener struct{ net.Listener }

func (l watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, lastNewline: -1}, nil
}

type watchedConn struct {
	net.Conn
	closed atomic.Bool // a read failed: the client closed or the connection broke
	// Bytes read, and the offset of the last newline among them (-1: none);
	// only the server's goroutine for the connection touches them.
	read, lastNewline int64
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		c.lastNewline = c.read + int64(i)
	}
	c.read += int64(n)
	if err != nil && !isTimeout(err) {
		c.closed.Store(true)
	}
	return n, err
}

// requestLineEnded tells, once the server gave up on a request's head
// that did not fit its buffer, whether the request line had ended: the
// full buffer holds the head's first requestHeadLimit bytes, the last ones
// read from the connection.
func (c *watchedConn) requestLineEnded() bool {
	return c.lastNewline >= c.read-requestHeadLimit
}

// finishBody keeps a keep-alive connection usable: a body the handler did
// not read to the end would otherwise be parsed as the next request.
func finishBody(c *fiber.Ctx) {
	b := bodyOf(c)
	if !b.eof && b.err == nil {
		_, _ = io.CopyN(io.Discard, b, drainLimit)
	}
	if !b.eof {
		c.Context().SetConnectionClose()
	}
}

// readJSON decodes a JSON request body of at most maxJSONBody bytes into v,
// strictly (decodeDocument), so a typo is reported rather than ignored.
func readJSON(c *fiber.Ctx, v any) error {
	data, err := io.ReadAll(io.LimitReader(bodyOf(c), maxJSONBody+1))
	if err != nil {
		return badRequest("The request body could not be read: %v.", err)
	}
	if len(data) > maxJSONBody {
		return bodyTooLarge(maxJSONBody)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("The request body is empty; send a JSON document.")
	}
	if err := decodeDocument(data, v); err != nil {
		return badRequest("The request body is not the JSON document this route expects: %s.", err)
	}
	return nil
}

// bufferBody reads a small body whole and puts it back, so middleware can
// look at it and the handler still reads it.
func bufferBody(c *fiber.Ctx, limit int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(bodyOf(c), int64(limit)+1))
	if err != nil {
		return nil, badRequest("The request body could not be read: %v.", err)
	}
	if len(data) > limit {
		return nil, bodyTooLarge(limit)
	}
	c.Locals(bodyKey, &trackedReader{r: bytes.NewReader(data)})
	return data, nil
}

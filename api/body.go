package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

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
func bodyOf(c *fiber.Ctx) *trackedReader {
	if b, ok := c.Locals(bodyKey).(*trackedReader); ok {
		return b
	}
	var r io.Reader = bytes.NewReader(nil)
	if s := c.Context().RequestBodyStream(); s != nil {
		r = s
	} else if len(c.Request().Body()) > 0 {
		r = bytes.NewReader(c.Request().Body())
	}
	b := &trackedReader{r: r}
	c.Locals(bodyKey, b)
	return b
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
// refusing unknown fields so a typo is reported rather than ignored.
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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("The request body is not the JSON document this route expects: %s.", describeJSONError(err))
	}
	if dec.More() {
		return badRequest("The request body holds more than one JSON document; send exactly one.")
	}
	return nil
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d (%v)", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("expected a %s, not a JSON %s", typ.Type, typ.Value)
	}
	return err.Error()
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

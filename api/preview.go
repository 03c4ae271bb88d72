package api

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"os"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

// previewMapping answers what a mapping makes of a sample file: the first
// canonical products, the issue summary and the counts. It stores nothing:
// neither the mapping nor the file.
func (s *server) previewMapping(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	params, err := uploadParamsOf(c)
	if err != nil {
		return err
	}
	if s.cfg.Open == nil {
		return notServed("This server does not preview mappings; ask a server running the API with its decoders.")
	}
	doc, sample, truncated, err := previewParts(c)
	if err != nil {
		return err
	}
	var m schemas.Mapping
	if err := decodeDocument(doc, &m); err != nil {
		return badRequest("The mapping part is not a mapping document: %s.", err)
	}
	if err := m.Validate(); err != nil {
		return invalidMapping(err, "preview it again")
	}
	head := sample[:min(len(sample), headSize)]
	kind, err := s.cfg.Detect(head, params.format, m.Resolve().Charset)
	if err != nil {
		return rejectedFile(head, err)
	}
	tmp := s.cfg.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	pv, err := schemas.PreviewFile(schemas.PreviewRequest{
		Sample: sample, Truncated: truncated, Kind: kind, Delimiter: params.delimiter, Mapping: m, Partner: partner,
		Open: s.cfg.Open, TempDir: tmp, Now: s.cfg.Now().UTC(),
	})
	switch {
	case errors.Is(err, schemas.ErrColumnsMismatch):
		return kindProblem(schemas.ErrColumnsMismatch, "columns-mismatch", "Columns do not fit the mapping", "%s.", clause(err))
	case err != nil:
		return unprocessable("unreadable-sample", "Sample cannot be read", "The sample cannot be read as a %s feed: %s.", pv.Format, clause(err))
	}
	return c.JSON(pv)
}

// previewParts reads the mapping part (a JSON document) and the file part
// (at most schemas.PreviewMaxBytes of it) of a multipart/form-data body.
func previewParts(c *fiber.Ctx) (doc, sample []byte, truncated bool, err error) {
	mediaType, params, perr := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if perr != nil || mediaType != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return nil, nil, false, badRequest(`Send a multipart/form-data body with a "mapping" part (the mapping JSON) and a "file" part (a sample of the feed): curl -F mapping=@mapping.json -F file=@sample.csv.`)
	}
	mr := multipart.NewReader(bodyOf(c), params["boundary"])
	var haveFile bool
	for doc == nil || !haveFile {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, false, badRequest("The multipart/form-data body is malformed (%v); send it again.", err)
		}
		switch part.FormName() {
		case "mapping":
			if doc, err = io.ReadAll(io.LimitReader(part, maxJSONBody+1)); err != nil {
				return nil, nil, false, interrupted(err)
			}
			if len(doc) > maxJSONBody {
				return nil, nil, false, bodyTooLarge(maxJSONBody)
			}
		case "file":
			if sample, err = io.ReadAll(io.LimitReader(part, schemas.PreviewMaxBytes+1)); err != nil {
				return nil, nil, false, interrupted(err)
			}
			haveFile = true
			if len(sample) > schemas.PreviewMaxBytes {
				sample, truncated = sample[:schemas.PreviewMaxBytes], true
			}
		}
	}
	switch {
	case doc == nil:
		return nil, nil, false, badRequest(`The body has no "mapping" part; send the mapping JSON as one (curl -F mapping=@mapping.json).`)
	case !haveFile:
		return nil, nil, false, badRequest(`The body has no "file" part; send a sample of the feed as one (curl -F file=@sample.csv).`)
	}
	return doc, sample, truncated, nil
}

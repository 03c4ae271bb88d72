package api

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

// suggestAnswer is what GET /v1/suggest answers.
type suggestAnswer struct {
	Suggestions []schemas.Suggestion `json:"suggestions"`
	TookMS      int64                `json:"took_ms"`
}

// suggest completes what a shopper is typing in the search box: brands,
// categories and title words starting with q. It is asked on every
// keystroke, so it records nothing for analytics.
func (s *server) suggest(c *fiber.Ctx) error {
	if s.cfg.Index == nil {
		return searchUnavailable()
	}
	suggester, ok := s.cfg.Index.(schemas.ProductSuggester)
	if !ok {
		return notServed("The search backend of this server offers no suggestions; search with GET /v1/search instead.")
	}
	req, err := suggestRequest(c)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := storeCtx(c)
	defer cancel()
	list, err := suggester.Suggest(ctx, req)
	if err != nil {
		return failed("suggest", err)
	}
	if list == nil {
		list = []schemas.Suggestion{}
	}
	return c.JSON(suggestAnswer{Suggestions: list, TookMS: time.Since(start).Milliseconds()})
}

// suggestRequest reads q and limit, naming the one that is wrong.
func suggestRequest(c *fiber.Ctx) (schemas.SuggestRequest, error) {
	r := schemas.SuggestRequest{Prefix: strings.TrimSpace(c.Query("q")), Limit: schemas.SuggestDefaultLimit}
	switch n := utf8.RuneCountInString(r.Prefix); {
	case n == 0:
		return r, invalidParameter("q is required: the start of a brand, a category or a word, such as \"so\" or \"헤드\".")
	case n > schemas.SuggestMaxPrefix:
		return r, invalidParameter("q is %d characters long; suggestions complete at most %d: search the whole text with GET /v1/search.", n, schemas.SuggestMaxPrefix)
	}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > schemas.SuggestMaxLimit {
			return r, invalidParameter("limit must be a whole number from 1 to %d, not %q.", schemas.SuggestMaxLimit, s)
		}
		r.Limit = n
	}
	return r, nil
}

package api

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"feedline/pipeline"
	"feedline/schemas"
)

// search answers one page of products; the query is then recorded for
// analytics in the background, where a failure only costs a log line.
func (s *server) search(c *fiber.Ctx) error {
	if s.cfg.Index == nil {
		return searchUnavailable()
	}
	req, err := searchRequest(c, s.cfg.Currency)
	if err != nil {
		return err
	}
	req.Synonyms = s.synonyms.thesaurus()
	start := time.Now()
	ctx, cancel := storeCtx(c)
	defer cancel()
	res, err := s.cfg.Index.Search(ctx, req)
	if errors.Is(err, schemas.ErrBadCursor) {
		return kindProblem(schemas.ErrBadCursor, "invalid-parameter", "Invalid parameter",
			"cursor is not valid for this search; repeat the search without it and follow next_cursor.")
	}
	if err != nil {
		return failed("search the catalog", err)
	}
	took := time.Since(start)
	if res.Hits == nil {
		res.Hits = []schemas.Product{}
	}
	if res.TotalRelation == "" {
		res.TotalRelation = schemas.TotalExact
	}
	if res.FacetsBasis == "" {
		res.FacetsBasis = schemas.FacetsAllMatches
	}
	if res.Facets == nil {
		res.Facets = map[string][]schemas.FacetCount{}
	}
	for _, f := range []string{"brand", "category", "availability", "partner"} {
		if res.Facets[f] == nil {
			res.Facets[f] = []schemas.FacetCount{}
		}
	}
	answer := searchAnswer{SearchResult: res, Hits: make([]searchHit, len(res.Hits)), TookMS: took.Milliseconds()}
	for i, p := range res.Hits {
		answer.Hits[i].Product = p
		if i < len(res.Highlights) {
			answer.Hits[i].Highlight = res.Highlights[i]
		}
	}
	if req.ComparesPrices() {
		answer.PriceCurrency = req.Currency
	}
	if err := c.JSON(answer); err != nil {
		return err
	}
	go s.recordSearch(schemas.SearchQueryEvent{
		ID:      s.cfg.NewID(),
		At:      s.cfg.Now().UTC(),
		Query:   req.Text,
		Filters: searchFilters(req),
		Sort:    req.Sort,
		Results: int64(res.Total),
		TookMs:  float64(took.Microseconds()) / 1000,
	})
	return nil
}

// searchAnswer is a page of hits and how long the search took, in whole
// milliseconds as Elasticsearch's took; a search that filtered or sorted by
// price also says the currency it compared in.
type searchAnswer struct {
	schemas.SearchResult
	Hits          []searchHit `json:"hits"`
	TookMS        int64       `json:"took_ms"`
	PriceCurrency string      `json:"price_currency,omitempty"`
}

// searchHit is a product found, with where its title and description
// matched the text (schemas.Highlight: UTF-16 ranges); no highlight when
// nothing is to be marked.
type searchHit struct {
	schemas.Product
	Highlight schemas.Highlight `json:"highlight,omitempty"`
}

func (s *server) recordSearch(ev schemas.SearchQueryEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), analyticsTimeout)
	defer cancel()
	if _, err := pipeline.Publish(ctx, s.cfg.Pub, ev); err != nil {
		s.cfg.Log.Warn("search not recorded for analytics", slog.String("event", ev.ID), slog.Any("err", err))
	}
}

// getProduct answers one product by id ("acme:SKU-1", URL-escaped).
func (s *server) getProduct(c *fiber.Ctx) error {
	if s.cfg.Index == nil {
		return searchUnavailable()
	}
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil {
		return invalidParameter("The product id %q is not correctly URL-escaped.", c.Params("id"))
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	p, err := s.cfg.Index.Get(ctx, id)
	if errors.Is(err, schemas.ErrNotFound) {
		return notFound("No product %q; product ids are \"<partner>:<sku>\".", id)
	}
	if err != nil {
		return failed("read the product", err)
	}
	return c.JSON(p)
}

func searchUnavailable() error {
	return problem(fiber.StatusServiceUnavailable, "search-unavailable", "Search unavailable",
		"This server does not serve search; send search requests to a server running the index.")
}

// PriceHistory answers GET /v1/products/{id}/prices.
type PriceHistory struct {
	ProductID string               `json:"product_id"`
	Since     time.Time            `json:"since"`
	Points    []schemas.PricePoint `json:"points"`
}

// productPrices answers a product's price history, oldest first, bounded
// by schemas.PriceHistoryWindow and schemas.MaxPricePoints. The index
// says whether the product exists; the analytics store holds its past.
func (s *server) productPrices(c *fiber.Ctx) error {
	if s.cfg.Index == nil {
		return searchUnavailable()
	}
	if s.cfg.Prices == nil {
		return notServed("This server reads no analytics store; send price history requests to a server running the analytics stage.")
	}
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil {
		return invalidParameter("The product id %q is not correctly URL-escaped.", c.Params("id"))
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	if _, err := s.cfg.Index.Get(ctx, id); errors.Is(err, schemas.ErrNotFound) {
		return notFound("No product %q; product ids are \"<partner>:<sku>\".", id)
	} else if err != nil {
		return failed("read the product", err)
	}
	since := s.cfg.Now().UTC().Add(-schemas.PriceHistoryWindow)
	points, err := s.cfg.Prices.Prices(ctx, id, since)
	if err != nil {
		return failed("read the price history", err)
	}
	return c.JSON(PriceHistory{ProductID: id, Since: since, Points: points})
}

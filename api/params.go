package api

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

// Search paging bounds.
const (
	defaultSearchLimit = 20
	maxSearchLimit     = 100
)

var sorts = []string{schemas.SortRelevance, schemas.SortPriceAsc, schemas.SortPriceDesc, schemas.SortNewest}

// DefaultCurrency is what a search filtering or sorting by price compares
// in when neither the request nor the configuration names a currency.
const DefaultCurrency = "KRW"

var modes = []string{schemas.ModeFull, schemas.ModeDelta}

// delimiters maps the accepted spellings of the delimiter parameter.
var delimiters = map[string]rune{
	",": ',', "comma": ',',
	"\t": '\t', "tab": '\t', `\t`: '\t',
	";": ';', "semicolon": ';',
	"|": '|', "pipe": '|',
}

// queryAll returns every value of a repeated query parameter, skipping empty ones.
func queryAll(c *fiber.Ctx, name string) []string {
	var out []string
	for _, v := range c.Context().QueryArgs().PeekMulti(name) {
		if s := strings.TrimSpace(string(v)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// searchRequest reads the search parameters, naming the one that is wrong.
// A search that filters or sorts by price compares in the request's
// currency, or else in currency, the service's; every search takes its
// price statistics in that currency.
func searchRequest(c *fiber.Ctx, currency string) (schemas.SearchRequest, error) {
	r := schemas.SearchRequest{
		Text:       strings.TrimSpace(c.Query("q")),
		Brands:     queryAll(c, "brand"),
		Categories: queryAll(c, "category"),
		Partners:   queryAll(c, "partner"),
		Sort:       c.Query("sort", schemas.SortRelevance),
		Limit:      defaultSearchLimit,
		Cursor:     c.Query("cursor"),
	}
	for _, a := range queryAll(c, "availability") {
		if !slices.Contains(schemas.Availabilities, schemas.Availability(a)) {
			return r, invalidParameter("availability %q is not one of %s.", a, joinAvailabilities())
		}
		r.Availability = append(r.Availability, schemas.Availability(a))
	}
	var err error
	if r.MinPrice, err = priceParam(c, "min_price"); err != nil {
		return r, err
	}
	if r.MaxPrice, err = priceParam(c, "max_price"); err != nil {
		return r, err
	}
	if r.MinPrice != nil && r.MaxPrice != nil && *r.MinPrice > *r.MaxPrice {
		return r, invalidParameter("min_price (%d) is above max_price (%d).", *r.MinPrice, *r.MaxPrice)
	}
	if !slices.Contains(sorts, r.Sort) {
		return r, invalidParameter("sort %q is not one of %s.", r.Sort, strings.Join(sorts, ", "))
	}
	if s := strings.TrimSpace(c.Query("currency")); s != "" {
		code, ok := schemas.CurrencyCode(s)
		if !ok {
			return r, invalidParameter("currency %q is not an ISO 4217 code: give the three letters of the currency min_price, max_price and a price sort compare in, such as KRW or USD, or leave it out for this service's %s.", s, currency)
		}
		r.Currency = code
	}
	if r.Currency == "" {
		r.Currency = currency
	}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxSearchLimit {
			return r, invalidParameter("limit must be a whole number from 1 to %d, not %q.", maxSearchLimit, s)
		}
		r.Limit = n
	}
	return r, nil
}

func priceParam(c *fiber.Ctx, name string) (*int64, error) {
	s := c.Query(name)
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, invalidParameter("%s must be a whole number of minor currency units (cents), 0 or more, not %q.", name, s)
	}
	return &n, nil
}

func joinAvailabilities() string {
	names := make([]string, len(schemas.Availabilities))
	for i, a := range schemas.Availabilities {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// searchFilters spells the filters of a search for analytics, in a stable order.
func searchFilters(r schemas.SearchRequest) string {
	v := url.Values{}
	v["brand"] = r.Brands
	v["category"] = r.Categories
	v["partner"] = r.Partners
	for _, a := range r.Availability {
		v.Add("availability", string(a))
	}
	if r.MinPrice != nil {
		v.Set("min_price", strconv.FormatInt(*r.MinPrice, 10))
	}
	if r.MaxPrice != nil {
		v.Set("max_price", strconv.FormatInt(*r.MaxPrice, 10))
	}
	if r.ComparesPrices() {
		v.Set("currency", r.Currency)
	}
	return v.Encode()
}

// uploadParams are the query parameters of an upload.
type uploadParams struct {
	mode      string
	format    string // "" = detect
	delimiter rune   // 0 = detect
	filename  string
}

func uploadParamsOf(c *fiber.Ctx) (uploadParams, error) {
	p := uploadParams{
		mode:     c.Query("mode", schemas.ModeFull),
		format:   c.Query("format"),
		filename: c.Query("filename"),
	}
	if !slices.Contains(modes, p.mode) {
		return p, invalidParameter("mode %q is not one of %s.", p.mode, strings.Join(modes, ", "))
	}
	if p.format != "" && !slices.Contains(schemas.Formats, p.format) {
		return p, invalidParameter("format %q is not one of %s; leave it out to detect the format.", p.format, strings.Join(schemas.Formats, ", "))
	}
	if d := c.Query("delimiter"); d != "" {
		r, ok := delimiters[d]
		if !ok {
			return p, invalidParameter(`delimiter %q is not one of ",", ";", "|", tab (or comma, semicolon, pipe); leave it out to detect it.`, d)
		}
		p.delimiter = r
	}
	return p, nil
}

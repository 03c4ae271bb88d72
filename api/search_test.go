package api

import (
	"net/http"
	"slices"
	"testing"
)

// TestSearchPriceCurrencyDefaultIsConfigured: a price search that names
// no currency compares in the service's configured one, upper-cased.
func TestSearchPriceCurrencyDefaultIsConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Currency = "eur" })
	v := newConformance(t)
	indexProducts(t, e)
	req := request(http.MethodGet, "/v1/search?max_price=2000", "", nil)
	r := e.send(t, req)
	v.check(t, req, r)
	var res searchAnswer
	r.decode(t, &res)
	if r.StatusCode != http.StatusOK || res.PriceCurrency != "EUR" || !slices.Equal(answerIDs(res), []string{"acme:SKU-3"}) {
		t.Errorf("max_price=2000 with EUR configured: %d, price_currency %q, hits %v", r.StatusCode, res.PriceCurrency, answerIDs(res))
	}
}

package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"feedline/api"
)

// TestShopperTokenAnswers: a missing or refused shopper token is answered
// as a token failure, not as an API key's; a token valid for longer than
// the configured maximum, from now or from its issue, is refused, and so
// is one issued in the future.
func TestShopperTokenAnswers(t *testing.T) {
	t.Parallel()
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) { c.TokenMaxLifetime = 2 * time.Hour })
	now := time.Now()
	sign := func(key string, ttl time.Duration, issued time.Time) string {
		t.Helper()
		tok, err := api.SignToken([]byte(key), "bob", ttl, issued)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name, token string
		want        int
		says        string
	}{
		{"no token", "", http.StatusUnauthorized, "Send a shopper token"},
		{"forged", sign("another-key-0123456789", time.Hour, now), http.StatusUnauthorized, "signature"},
		{"expired", sign(testTokenKey, time.Hour, now.Add(-2*time.Hour)), http.StatusUnauthorized, "expired"},
		{"longer than the maximum", sign(testTokenKey, 3*time.Hour, now), http.StatusUnauthorized, "the longest a shopper token may be valid"},
		{"a century", sign(testTokenKey, 100*365*24*time.Hour, now), http.StatusUnauthorized, "more than 2h0m0s from now"},
		{"long-lived, issued earlier", sign(testTokenKey, 150*time.Minute, now.Add(-time.Hour)), http.StatusUnauthorized, "valid for 2h30m0s from its issue"},
		{"issued in the future", sign(testTokenKey, time.Hour, now.Add(time.Hour)), http.StatusUnauthorized, "before issued"},
		{"within the maximum", sign(testTokenKey, 2*time.Hour-time.Minute, now), http.StatusOK, ""},
	} {
		r := ts.do(http.MethodGet, "/v1/feed", tc.token, nil, "")
		if r.Status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.want)
			continue
		}
		if tc.want == http.StatusOK {
			continue
		}
		r.problem(t)
		var p api.Problem
		r.json(t, &p)
		if p.Title != "Missing or invalid shopper token" || p.Type != api.ProblemType+"invalid-token" || !strings.Contains(p.Detail, tc.says) {
			t.Errorf("%s: %s, want a token failure saying %q", tc.name, r.Body, tc.says)
		}
	}
}

// TestPostAndFollowAnswers: a post's fields are bounded and refused with
// the limit named, NUL characters included; following a shop that is no
// partner answers 404, and one that is, 202.
func TestPostAndFollowAnswers(t *testing.T) {
	t.Parallel()
	ts := startTestSystem(t, t.TempDir())
	bob := ts.shopper("bob")
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name, body string
		want       int
		says       string
	}{
		{"image url too long", `{"text": "hi", "image_urls": ["https://img.example/` + long(2100) + `"]}`, 422, "at most 2048"},
		{"product id too long", `{"text": "hi", "product_id": "acme:` + long(400) + `"}`, 422, "at most 320"},
		{"sku too long", `{"text": "hi", "product_id": "acme:` + long(300) + `"}`, 422, "at most 256 bytes"},
		{"product id of no partner", `{"text": "hi", "product_id": "Not A Partner:sku-1"}`, 422, "is not a product id"},
		{"NUL in the text", `{"text": "hi\u0000there"}`, 422, "NUL character"},
		{"NUL in the product id", `{"text": "hi", "product_id": "acme:sku\u0000"}`, 422, "without NUL characters"},
		{"NUL in an image url", `{"text": "hi", "image_urls": ["https://img.example/a\u0000.png"]}`, 422, "is not an http(s) URL"},
		{"within every bound", `{"text": "hi", "product_id": "acme:` + long(256) + `", "image_urls": ["https://img.example/` + long(2000) + `"]}`, 202, ""},
	} {
		r := bob.do(http.MethodPost, "/v1/posts", tc.body)
		if r.Status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.want)
			continue
		}
		if tc.want >= 400 {
			if p := r.problem(t); !strings.Contains(p.Detail, tc.says) {
				t.Errorf("%s: %q does not say %q", tc.name, p.Detail, tc.says)
			}
		}
	}

	r := bob.do(http.MethodPut, "/v1/follows/shop/ghost", "")
	if r.Status != http.StatusNotFound || !strings.Contains(r.problem(t).Detail, `No shop "ghost"`) {
		t.Errorf("following a shop that does not exist: %d %s", r.Status, r.Body)
	}
	ts.addPartner("acme")
	if r := bob.do(http.MethodPut, "/v1/follows/shop/acme", ""); r.Status != http.StatusAccepted {
		t.Errorf("following partner acme: %d %s", r.Status, r.Body)
	}
}

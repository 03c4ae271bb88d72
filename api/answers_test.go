package api

import (
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
)

// TestJSONDocumentsAreReadStrictly: a key given twice, or one that names a
// field only when case is ignored, is refused with the key named; a JSON
// value of the wrong shape is named as JSON, not as a Go type.
func TestJSONDocumentsAreReadStrictly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	for _, tc := range []struct {
		name, method, path, body string
		want                     []string
	}{
		{"duplicate key", http.MethodPost, "/v1/partners", `{"id": "shop-a", "id": "shop-b"}`,
			[]string{`key "id" is given twice in the document`}},
		{"key differing by case", http.MethodPost, "/v1/partners", `{"ID": "shop-a"}`,
			[]string{`key "ID"`, `the field is "id"`, "case-sensitive"}},
		{"array for an object", http.MethodPost, "/v1/partners", `[{"id": "shop-a"}]`,
			[]string{"expected a JSON object, not a JSON array"}},
		{"string for a number", http.MethodPut, "/v1/partners/acme/settings", `{"max_delete_percent": "50"}`,
			[]string{`field "max_delete_percent" must be a whole number, not a JSON string`}},
		{"duplicate map key deep down", http.MethodPut, "/v1/partners/acme/mapping",
			`{"fields": {"id": "sku", "title": "name", "price": "price", "title": "headline"}}`,
			[]string{`key "title" is given twice in fields`}},
		{"case in a rule's condition given alone", http.MethodPut, "/v1/partners/acme/mapping",
			`{"preset": "google_merchant", "rules": [{"kind": "exclude", "when": {"Field": "brand", "equals": "x"}}]}`,
			[]string{`key "Field" in rules[0].when is not a field; the field is "field"`}},
		{"case in a rule's conditions listed", http.MethodPut, "/v1/partners/acme/mapping",
			`{"preset": "google_merchant", "rules": [{"kind": "exclude", "when": [{"field": "brand", "Equals": "x"}]}]}`,
			[]string{`key "Equals" in rules[0].when[0] is not a field; the field is "equals"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(tc.method, tc.path, key, strings.NewReader(tc.body))
			if tc.path == "/v1/partners" {
				req = request(tc.method, tc.path, testAdminKey, strings.NewReader(tc.body))
			}
			r := e.send(t, req)
			v.check(t, req, r)
			p := r.problem(t)
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("%d %s, want 400", r.StatusCode, r.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(p.Detail, w) {
					t.Errorf("detail %q does not say %q", p.Detail, w)
				}
			}
			if strings.Contains(p.Detail, "api.") || strings.Contains(p.Detail, "schemas.") {
				t.Errorf("detail %q names a Go type", p.Detail)
			}
		})
	}
	// The same keys, once each and spelled right, are taken.
	e.putMapping(t, "acme", key, map[string]any{"preset": "google_merchant",
		"rules": []map[string]any{{"kind": "exclude", "when": map[string]string{"field": "brand", "equals": "x"}}}})
}

// TestLongRequestLineAnswers414: a path too long for the server's buffer
// is a URI too long (414), while headers that do not fit stay 431.
func TestLongRequestLineAnswers414(t *testing.T) {
	t.Parallel()
	e := &env{app: New(quietConfig())}
	base := serve(t, e)
	get := func(path string, header http.Header) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(req.Header, header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{Response: resp, body: body}
	}
	// A request first, so the long one follows on a kept-alive connection.
	if r := get("/healthz", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", r.StatusCode)
	}
	r := get("/v1/products/acme:"+strings.Repeat("x", 5000), nil)
	if r.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("a 5,000-byte path: %d %s", r.StatusCode, r.body)
	}
	if p := r.problem(t); p.Type != ProblemType+"uri-too-long" || !strings.Contains(p.Detail, "4096 bytes") {
		t.Errorf("a 5,000-byte path: %s", r.body)
	}
	for _, path := range []string{"/healthz", "/v1/products/acme:" + strings.Repeat("y", 1000)} {
		r = get(path, http.Header{"X-Padding": {strings.Repeat("p", 5000)}})
		if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("a 5,000-byte header after a %d-byte path: %d %s", len(path), r.StatusCode, r.body)
		}
		if p := r.problem(t); p.Type != ProblemType+"headers-too-large" {
			t.Errorf("a 5,000-byte header: %s", r.body)
		}
	}
}

package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestJSONDocumentsAreReadStrictly: a key given twice, or one that names a
// field only when case is ignored, is refused with the key named; a JSON
// value of the wrong shape is named as JSON, not as a Go type.
func TestJSONDocumentsAreReadStrictly(t *testing.T) {
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

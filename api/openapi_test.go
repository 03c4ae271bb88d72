package api

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// conformance holds answers to the OpenAPI document.
type conformance struct {
	doc    *openapi3.T
	router routers.Router
}

func newConformance(t *testing.T) *conformance {
	t.Helper()
	decodeNDJSON()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &conformance{doc: doc, router: router}
}

// check fails the test unless the answer is one the document describes for
// this request: status, headers, content type and body. A successful answer
// also proves the request itself was one the document allows. Requests no
// operation describes (unknown path or method) must answer a problem.
func (v *conformance) check(t *testing.T, req *http.Request, r response) {
	t.Helper()
	ctx := context.Background()
	// The router matches the decoded path, which would split an escaped
	// "/" inside a path parameter (a SKU may hold one).
	escaped := req.Clone(ctx)
	escaped.URL.Path, escaped.URL.RawPath = req.URL.EscapedPath(), ""
	route, params, err := v.router.FindRoute(escaped)
	if err != nil {
		if r.StatusCode < 400 {
			t.Errorf("%s %s answered %d but the document has no such operation (%v)", req.Method, req.URL.Path, r.StatusCode, err)
			return
		}
		v.checkProblem(t, req, r)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if r.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s succeeded but the document does not allow the request: %v", req.Method, req.URL, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.StatusCode,
		Header:                 r.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s %s answered %d %s\nwhich the document does not describe: %v", req.Method, req.URL, r.StatusCode, r.body, err)
	}
	if r.StatusCode >= 400 {
		v.checkProblem(t, req, r)
	}
}

func (v *conformance) checkProblem(t *testing.T, req *http.Request, r response) {
	t.Helper()
	p := r.problem(t)
	var doc any
	r.decode(t, &doc)
	if err := v.doc.Components.Schemas["Problem"].Value.VisitJSON(doc); err != nil {
		t.Errorf("%s %s: problem does not match the Problem schema: %v", req.Method, req.URL, err)
	}
	if p.Instance != req.URL.EscapedPath() {
		t.Errorf("problem instance %q, want the request path %q", p.Instance, req.URL.EscapedPath())
	}
}

// TestRoutesMatchOpenAPI fails when a route is added without documenting it,
// or a documented operation has no route.
func TestRoutesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	app := New(quietConfig())
	v := newConformance(t)
	param := regexp.MustCompile(`:([A-Za-z0-9_]+)`)

	var served []string
	for _, r := range app.GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue // Fiber answers HEAD for every GET route
		}
		served = append(served, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	var documented []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	served = slices.Compact(served)
	slices.Sort(documented)
	for _, op := range served {
		if !slices.Contains(documented, op) {
			t.Errorf("route %s is served but not in openapi.json", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("openapi.json documents %s but no route serves it", op)
		}
	}
	if len(served) < 12 {
		t.Errorf("only %d routes served: %v", len(served), served)
	}
}

// TestOpenAPIOperationsAreComplete keeps every operation browsable and its
// error answers documented as problems.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	t.Parallel()
	v := newConformance(t)
	for path, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s has no operationId or summary", name)
			}
			if op.Responses.Value("500") == nil {
				t.Errorf("%s does not document 500", name)
			}
			for status, ref := range op.Responses.Map() {
				if status == "default" {
					t.Errorf("%s has a default response: undocumented statuses would pass", name)
				}
				if strings.HasPrefix(status, "2") {
					continue
				}
				if ref.Value.Content.Get(contentTypeProblem) == nil {
					t.Errorf("%s answers %s without application/problem+json", name, status)
				}
			}
		}
	}
}

func TestDocsPageIsSelfContained(t *testing.T) {
	t.Parallel()
	e := &env{app: New(quietConfig())}
	r := e.send(t, request(http.MethodGet, "/docs", "", nil))
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	page := string(r.body)
	if !strings.Contains(page, `fetch("/openapi.json")`) {
		t.Error("the docs page does not load /openapi.json")
	}
	// No scripts, styles or fonts from elsewhere: the page must work offline.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).FindString(page); m != "" {
		t.Errorf("the docs page loads from the network: %s", m)
	}
	for _, part := range []string{"parameters", "requestBody", "responses", "summary"} {
		if !strings.Contains(page, part) {
			t.Errorf("the docs page does not render %s", part)
		}
	}
	var doc map[string]any
	r = e.send(t, request(http.MethodGet, "/openapi.json", "", nil))
	if err := json.Unmarshal(r.body, &doc); err != nil || doc["openapi"] != "3.0.3" {
		t.Fatalf("GET /openapi.json: %v %v", err, doc["openapi"])
	}
}

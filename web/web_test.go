package web_test

import (
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"feedline/web"
)

func TestPagesAndAssetsCarryThePolicy(t *testing.T) {
	app := fiber.New()
	web.Mount(app)
	for _, tc := range []struct{ path, contentType string }{
		{"/", "text/html"},
		{"/product?id=acme:1", "text/html"},
		{"/feed", "text/html"},
		{"/partner", "text/html"},
		{"/assets/feed.js", "text/javascript"},
		{"/assets/partner.js", "text/javascript"},
		{"/assets/style.css", "text/css"},
		{"/assets/common.js", "text/javascript"},
		{"/assets/store.js", "text/javascript"},
	} {
		res, err := app.Test(httptest.NewRequest("GET", tc.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s: %d, %d bytes", tc.path, res.StatusCode, len(body))
			continue
		}
		if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.contentType) {
			t.Errorf("%s: Content-Type %q, want %s", tc.path, got, tc.contentType)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %s", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-") {
			t.Errorf("%s: Content-Security-Policy %q allows unsafe sources", tc.path, csp)
		}
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("%s: %s %q, want %q", tc.path, h, got, want)
			}
		}
	}
	// A browser that has a file revalidates it for nothing.
	first, err := app.Test(httptest.NewRequest("GET", "/assets/store.js", nil))
	if err != nil {
		t.Fatal(err)
	}
	again := httptest.NewRequest("GET", "/assets/store.js", nil)
	again.Header.Set("If-None-Match", first.Header.Get("ETag"))
	res, err := app.Test(again)
	if err != nil {
		t.Fatal(err)
	}
	if first.Header.Get("ETag") == "" || res.StatusCode != 304 || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("revalidation: ETag %q, %d", first.Header.Get("ETag"), res.StatusCode)
	}
	for _, path := range []string{"/assets/index.html", "/assets/nothing.js", "/assets/..%2fweb.go"} {
		res, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, res.StatusCode)
		}
	}
}

// The policy forbids inline script and style, so the pages must have none:
// a page that did would break in the browser, not in review.
func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=|javascript:`)
	src := regexp.MustCompile(`(?i)<script\s[^>]*src="/assets/[a-z]+\.js"[^>]*></script>`)
	pages, err := fs.Glob(os.DirFS("static"), "*.html")
	if err != nil || len(pages) < 4 {
		t.Fatalf("pages: %v %v", pages, err)
	}
	for _, name := range pages {
		data, err := os.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		html := src.ReplaceAllString(string(data), "")
		if m := inline.FindString(html); m != "" {
			t.Errorf("%s: inline script or style %q", name, m)
		}
		if strings.Contains(string(data), "http://") || strings.Contains(string(data), "https://") {
			t.Errorf("%s: names an outside address; pages load only from their own origin", name)
		}
	}
}

// firstLoad is what a page's first visit fetches besides the API's JSON:
// the page and the assets it links.
func firstLoad(t *testing.T, page string) (files []string, bytes int) {
	t.Helper()
	html, err := os.ReadFile("static/" + page)
	if err != nil {
		t.Fatal(err)
	}
	files, bytes = []string{page}, len(html)
	for _, m := range regexp.MustCompile(`(?:src|href)="/assets/([a-z]+\.(?:js|css))"`).FindAllStringSubmatch(string(html), -1) {
		data, err := os.ReadFile("static/" + m[1])
		if err != nil {
			t.Fatalf("%s links %s: %v", page, m[1], err)
		}
		files = append(files, m[1])
		bytes += len(data)
	}
	return files, bytes
}

// A page's first load stays small: a phone on a slow network gets it in
// one round of a few packets, not a framework.
func TestFirstLoadStaysSmall(t *testing.T) {
	const budget = 64 << 10
	for _, page := range []string{"index.html", "product.html", "feed.html", "partner.html"} {
		files, n := firstLoad(t, page)
		t.Logf("%s: %d bytes (%s)", page, n, strings.Join(files, " + "))
		if len(files) < 3 {
			t.Errorf("%s links %v; want its stylesheet and scripts", page, files)
		}
		if n > budget {
			t.Errorf("%s: first load %d bytes, over the %d-byte budget", page, n, budget)
		}
	}
}

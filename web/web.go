// Package web is feedline's pages: the storefront at /, a product's page,
// a shopper's feed and the partner console at /partner. They are static
// HTML, CSS and a little JavaScript, built into the binary, that call the
// JSON API of the same origin; nothing is loaded from anywhere else.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"

	"github.com/gofiber/fiber/v2"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is what every page and asset is served with: only
// this origin's scripts, styles and API, no inline script or style, no
// framing, no plug-ins.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Mount adds the pages and their assets (under /assets/) to app.
func Mount(app *fiber.App) {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	app.Get("/", serveFile(files, "index.html"))
	app.Get("/product", serveFile(files, "product.html"))
	app.Get("/feed", serveFile(files, "feed.html"))
	app.Get("/partner", serveFile(files, "partner.html"))
	assets := map[string]fiber.Handler{}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	for _, e := range entries {
		if ext := path.Ext(e.Name()); ext == ".js" || ext == ".css" {
			assets[e.Name()] = serveFile(files, e.Name())
		}
	}
	app.Get("/assets/:name", func(c *fiber.Ctx) error {
		if h, ok := assets[c.Params("name")]; ok {
			return h(c)
		}
		return fiber.ErrNotFound
	})
}

// serveFile answers one file, read once; its ETag lets a browser that has
// it revalidate with a 304 instead of fetching it again.
func serveFile(files fs.FS, name string) fiber.Handler {
	body, err := fs.ReadFile(files, name)
	if err != nil {
		return func(*fiber.Ctx) error { return fiber.ErrNotFound }
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return func(c *fiber.Ctx) error {
		setHeaders(c)
		c.Set(fiber.HeaderETag, etag)
		if c.Get(fiber.HeaderIfNoneMatch) == etag {
			return c.SendStatus(fiber.StatusNotModified)
		}
		c.Set(fiber.HeaderContentType, contentType(name))
		return c.Send(body)
	}
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// setHeaders sets the policy and the usual hardening headers. Pages and
// assets are small and change with the binary, so browsers revalidate.
func setHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", ContentSecurityPolicy)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	c.Set(fiber.HeaderCacheControl, "no-cache")
}

package bench

import (
	"strings"
	"testing"

	"feedline/pipeline"
)

// TestCatalogConfigValidate: sizes a run cannot take and an outside NATS
// without credentials are refused before any work, naming the flag.
func TestCatalogConfigValidate(t *testing.T) {
	if err := DefaultCatalogConfig().Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*CatalogConfig)
		want   string
	}{
		"no rows":            {func(c *CatalogConfig) { c.Rows = 0 }, "--rows 0"},
		"no share changed":   {func(c *CatalogConfig) { c.Changed = 0 }, "--changed 0"},
		"more than all rows": {func(c *CatalogConfig) { c.Changed = 2 }, "--changed 2"},
		"too many replicas": {func(c *CatalogConfig) {
			c.NATS = &NATS{URLs: "nats://127.0.0.1:4222", Replicas: 7, Auth: pipeline.ClientAuth{User: "admin", Password: "x"}}
		}, "--nats-replicas 7"},
		"no password": {func(c *CatalogConfig) {
			c.NATS = &NATS{URLs: "nats://127.0.0.1:4222", Replicas: 3, Auth: pipeline.ClientAuth{User: "admin"}}
		}, "FEEDLINE_NATS_PASSWORD"},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultCatalogConfig()
			tc.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

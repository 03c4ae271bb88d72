package elasticsearch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// The TestLiveOpenSearch… tests run against the real node of
// FEEDLINE_TEST_ES_URL: OpenSearch 2.19.6, which `make services` starts on
// 127.0.0.1:19200 (deploy/services/engines/50-search.sh). With CI=true they
// fail when it is unset; elsewhere they skip. Each Open uses a fresh alias
// and removes its indexes and template after.
//
//	FEEDLINE_SERVICES_DIR=/tmp/me deploy/services/services.sh up search
//	. ./services.env
//	go test ./connectors/elasticsearch -run Live

// liveURL is the address of the shared search node.
func liveURL(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("FEEDLINE_TEST_ES_URL")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FEEDLINE_TEST_ES_URL is not set; .ci/run starts a search node for this test (make services)")
		}
		t.Skip("FEEDLINE_TEST_ES_URL is not set: no search node to run against (make services starts one; the TestRecorded… tests cover the adapter offline)")
	}
	return addr
}

// liveTransport is a fresh transport for one Index, so closing idle
// connections of one test touches no other.
func liveTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 8
	return OpenSearchTransport{Base: t}
}

// liveConfig configures an Index on addr under a fresh alias.
func liveConfig(addr string) Config {
	return Config{
		Addresses: []string{addr},
		APIKey:    os.Getenv("FEEDLINE_TEST_ES_API_KEY"),
		Alias:     fmt.Sprintf("feedline-test-%016x", rand.Uint64()),
		Refresh:   "true",
		Transport: liveTransport(),
	}
}

func openLive(t *testing.T, cfg Config) *Index {
	t.Helper()
	ix, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { dropLive(t, ix) })
	return ix
}

// dropLive deletes the indexes and the template of ix's alias and closes it.
func dropLive(t testing.TB, ix *Index) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Names, not a wildcard: clusters refuse wildcard deletes by default.
	names, err := ix.Versions(ctx)
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, name := range names {
		if err := ix.conn.call(ctx, esapi.IndicesDeleteRequest{Index: []string{name}}, nil); err != nil {
			t.Errorf("cleanup %s: %v", name, err)
		}
	}
	if err := ix.conn.call(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: templateName(ix.alias)}, nil); err != nil {
		t.Errorf("cleanup template: %v", err)
	}
	_ = ix.Close()
}

package elasticsearch

import (
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"feedline/connectors/searchtest"
	"feedline/schemas"
)

// TestLiveOpenSearchContract: the real node gives the answers the embedded
// index gives under the same contract (connectors/embedsearch runs it too).
// The subtest is named after what the node runs ("opensearch-2.19.6").
func TestLiveOpenSearchContract(t *testing.T) {
	t.Parallel()
	addr := liveURL(t)
	t.Run(liveEngine(t, addr), func(t *testing.T) {
		searchtest.Run(t, func(t *testing.T) schemas.ProductIndex { return openLive(t, liveConfig(addr)) })
	})
}

// liveEngine names the distribution and version the node at addr runs.
func liveEngine(t *testing.T, addr string) string {
	t.Helper()
	c, err := newConn(liveConfig(addr).withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer c.es.Close(t.Context())
	var info nodeInfo
	if err := c.call(t.Context(), esapi.InfoRequest{}, &info); err != nil {
		t.Fatalf("node info of %s: %v", addr, err)
	}
	return info.distribution() + "-" + info.Version.Number
}

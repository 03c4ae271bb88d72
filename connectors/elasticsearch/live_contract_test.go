package elasticsearch

import (
	"testing"

	"feedline/connectors/searchtest"
	"feedline/schemas"
)

// TestLiveOpenSearchContract: the real node gives the answers the embedded
// index gives under the same contract (connectors/embedsearch runs it too).
func TestLiveOpenSearchContract(t *testing.T) {
	addr := liveURL(t)
	searchtest.Run(t, func(t *testing.T) schemas.ProductIndex { return openLive(t, liveConfig(addr)) })
}

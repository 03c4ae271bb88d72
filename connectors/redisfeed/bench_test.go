package redisfeed

import (
	"testing"

	"feedline/connectors/feedstoretest"
)

// BenchmarkFanout5000 adds one entry to 5,000 full feeds of 800 entries,
// one pipeline per fan-out.
func BenchmarkFanout5000(b *testing.B) {
	feedstoretest.BenchFanout(b, openStore(b), 5000, 800)
}

// BenchmarkFeedPage reads a page of 20 from a feed of 800 entries: one
// round trip to the server.
func BenchmarkFeedPage(b *testing.B) {
	feedstoretest.BenchFeedPage(b, openStore(b), 800)
}

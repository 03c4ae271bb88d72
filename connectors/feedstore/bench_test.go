package feedstore

import (
	"testing"

	"feedline/connectors/feedstoretest"
)

// BenchmarkFanout5000 adds one entry to 5,000 full feeds of 800 entries.
func BenchmarkFanout5000(b *testing.B) {
	s := New()
	defer s.Close()
	feedstoretest.BenchFanout(b, s, 5000, 800)
}

// BenchmarkFeedPage reads a page of 20 from a feed of 800 entries.
func BenchmarkFeedPage(b *testing.B) {
	s := New()
	defer s.Close()
	feedstoretest.BenchFeedPage(b, s, 800)
}

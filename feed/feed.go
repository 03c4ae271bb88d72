// Package feed is the news feed's domain logic over a schemas.FeedStore:
// its policy, the read side that answers pages, and the rebuild of a feed
// from timelines, which the fan-out stage also uses after an unfollow.
package feed

import "time"

// Policy tunes the feed; zero fields take the defaults.
type Policy struct {
	FeedCap     int // entries kept per reader's feed; default 800
	TimelineCap int // entries kept per author's timeline; default 800
	// CelebrityFollowers is the audience above which an author is not
	// fanned out to; default 10,000.
	CelebrityFollowers int
	// InactiveAfter skips readers who have not read their feed for this
	// long; their feed is rebuilt on their next read. Default 30 days.
	InactiveAfter time.Duration
	// PriceDropPercent is the smallest price drop that becomes news; default 10.
	PriceDropPercent int
	// NewProductsPerDay caps "new product" items per shop and day, so a
	// shop loading its whole catalog does not flood its followers; default 10.
	NewProductsPerDay int
	Chunk             int // readers per feed write; default 1,000
}

// WithDefaults fills the zero fields.
func (p Policy) WithDefaults() Policy {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.FeedCap, 800)
	def(&p.TimelineCap, 800)
	def(&p.CelebrityFollowers, 10_000)
	def(&p.PriceDropPercent, 10)
	def(&p.NewProductsPerDay, 10)
	def(&p.Chunk, 1000)
	if p.InactiveAfter <= 0 {
		p.InactiveAfter = 30 * 24 * time.Hour
	}
	return p
}

package schemas

import (
	"testing"
	"time"
)

func TestPriceTrailKeepsChangesAndTheNewestPoints(t *testing.T) {
	var trail PriceTrail
	if p := trail.Points(); p == nil || len(p) != 0 {
		t.Fatalf("empty trail points = %#v, want an empty list", p)
	}
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	n := 3 * MaxPricePoints
	for i := range n {
		v := uint64(2*i + 1)
		trail.Add(at.Add(time.Duration(i)*time.Minute), v, int64(i), "KRW")
		trail.Add(at.Add(time.Duration(i)*time.Minute), v, int64(i), "KRW")     // a copy of the same version
		trail.Add(at.Add(time.Duration(i)*time.Minute), v+1, int64(i), "KRW")   // same price, later version
		trail.Add(at.Add(time.Duration(i)*time.Minute), v-1, int64(i+7), "EUR") // older version than the last
	}
	p := trail.Points()
	if len(p) != MaxPricePoints {
		t.Fatalf("%d points, want %d", len(p), MaxPricePoints)
	}
	for i, pt := range p {
		if want := int64(n - MaxPricePoints + i); pt.Price != want || pt.Currency != "KRW" {
			t.Fatalf("point %d = %+v, want price %d KRW", i, pt, want)
		}
	}
}

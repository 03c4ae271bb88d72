package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSearchAsYouTypeUnderFeedLoad measures what a search box that asks
// at every keystroke would wait for, while wrk reads feeds at a steady
// rate beside it. It is a measurement for BENCHMARKS.md, run on demand:
//
//	FEEDLINE_BENCH_TYPING=1 go test -count=1 -run TestSearchAsYouTypeUnderFeedLoad -v ./web/
//
// It still checks every answer: each keystroke's search answers 200 and
// a whole word finds products.
func TestSearchAsYouTypeUnderFeedLoad(t *testing.T) {
	if os.Getenv("FEEDLINE_BENCH_TYPING") == "" {
		t.Skip("a measurement: set FEEDLINE_BENCH_TYPING=1 to run it")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("wrk is not installed (apt-get install wrk)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := buildFeedline(ctx, t, dir)
	sys := startServe(t, bin, filepath.Join(dir, "data"))
	shop := seedShop{"acme", 2000, seedShops()[0].names}
	key := sys.createPartner(t, shop.id)
	sys.setMapping(t, shop.id, key)
	sys.waitIndexed(t, key, sys.upload(t, shop.id, key, shop.csv(1)))

	// Readers whose feeds hold the shop's news: each follows it, reads once
	// (an active reader), then a price cut fills the feeds.
	var tokens []string
	for i := range 50 {
		tok := sys.token(t, bin, fmt.Sprintf("reader%d", i))
		sys.call(t, http.MethodPut, "/v1/follows/shop/"+shop.id, tok, "", nil, nil)
		tokens = append(tokens, tok)
	}
	time.Sleep(time.Second) // the follows are applied from the log
	for _, tok := range tokens {
		sys.call(t, http.MethodGet, "/v1/feed", tok, "", nil, nil)
	}
	sys.waitIndexed(t, key, sys.upload(t, shop.id, key, shop.csv(0.8)))

	words := []string{"kettle", "wireless", "speaker", "lamp", "earbuds", "bluetooth", "sonic kettle", "lumen desk lamp"}
	typeAll := func(rounds int) []time.Duration {
		var took []time.Duration
		client := &http.Client{Timeout: 10 * time.Second}
		for range rounds {
			for _, w := range words {
				for n := 1; n <= len(w); n++ {
					start := time.Now()
					res, err := client.Get(sys.base + "/v1/search?limit=10&q=" + url.QueryEscape(w[:n]))
					if err != nil {
						t.Fatal(err)
					}
					var page struct {
						Total int `json:"total"`
					}
					err = json.NewDecoder(res.Body).Decode(&page)
					res.Body.Close()
					took = append(took, time.Since(start))
					if res.StatusCode != http.StatusOK || err != nil {
						t.Fatalf("search %q: %d %v", w[:n], res.StatusCode, err)
					}
					if n == len(w) && page.Total == 0 {
						t.Errorf("search %q found nothing", w)
					}
				}
			}
		}
		return took
	}

	idle := typeAll(15)

	// wrk reads feeds as the readers, each connection pausing between
	// requests so the load is steady rather than everything the machine has.
	script := filepath.Join(dir, "feed.lua")
	var lua strings.Builder
	lua.WriteString("local tokens = {")
	for _, tok := range tokens {
		fmt.Fprintf(&lua, "%q,", tok)
	}
	lua.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n" +
		"  return wrk.format(\"GET\", \"/v1/feed?limit=20\", {[\"Authorization\"] = \"Bearer \" .. tokens[i]})\nend\n" +
		"delay = function() return 8 end\n")
	if err := os.WriteFile(script, []byte(lua.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	load := exec.CommandContext(ctx, wrk, "-t2", "-c16", "-d40s", "--latency", "-s", script, sys.base)
	loadOut := &strings.Builder{}
	load.Stdout = loadOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	loaded := typeAll(15)
	if err := load.Wait(); err != nil {
		t.Fatalf("wrk: %v\n%s", err, loadOut)
	}
	t.Logf("keystroke searches, idle: %s", percentiles(idle))
	t.Logf("keystroke searches, under feed reads: %s", percentiles(loaded))
	t.Logf("wrk (feed reads):\n%s", loadOut)
}

func percentiles(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("n=%d p50 %s p90 %s p99 %s max %s", len(s), at(0.5).Round(10*time.Microsecond),
		at(0.9).Round(10*time.Microsecond), at(0.99).Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond))
}

package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"feedline/connectors/elasticsearch"
	"feedline/connectors/embedsearch"
	"feedline/schemas"
)

// SearchConfig is what "feedline bench search" builds and measures.
type SearchConfig struct {
	Products   int           // catalog size
	Dir        string        // data directory; an index already in Dir/search is reused
	ESURL      string        // also measure an Elasticsearch (OpenSearch) node holding the same catalog
	ESProducts int           // catalog size on the node; 0: Products
	Duration   time.Duration // each wrk run
	Wrk        string
	Threads    int
	Conns      int
	Rate       int      // searches per second of the paced runs
	Classes    []string // query classes to run; nil: all
	CPUProfile string   // a CPU profile of the full-speed mix run
}

// DefaultSearchConfig is the catalog of the target: 2,000,000 products,
// 8 concurrent clients, paced runs at 100 searches/s.
func DefaultSearchConfig() SearchConfig {
	return SearchConfig{Products: 2_000_000, Duration: 10 * time.Second, Wrk: "wrk", Threads: 2, Conns: 8, Rate: 100}
}

// Validate checks sizes and counts.
func (c SearchConfig) Validate() error {
	switch {
	case c.Products < 1:
		return fmt.Errorf("--products %d: want a whole number above 0", c.Products)
	case c.ESProducts < 0:
		return fmt.Errorf("--es-products %d: want 0 (as --products) or more", c.ESProducts)
	case c.Duration < time.Second:
		return fmt.Errorf("--duration %s: want at least 1s", c.Duration)
	case c.Threads < 1 || c.Conns < c.Threads:
		return fmt.Errorf("--threads %d --conns %d: want at least one thread and a connection per thread", c.Threads, c.Conns)
	case c.Rate < 1:
		return fmt.Errorf("--rate %d: want at least 1 search/s", c.Rate)
	}
	for _, name := range c.Classes {
		if !slices.Contains(SearchClasses(), name) {
			return fmt.Errorf("--classes: unknown class %q (known: %s)", name, strings.Join(SearchClasses(), ","))
		}
	}
	return nil
}

// searchClass is one kind of shopper search, as request paths.
type searchClass struct {
	name, what string
	paths      []string
}

// SearchClasses names the query classes, in the order they run; "mix" is
// all the others interleaved.
func SearchClasses() []string {
	return []string{"broad", "narrow", "filtered", "faceted", "korean", "english", "identifier", "match-all", "every-title", "mix"}
}

func searchPath(v url.Values) string { return "/v1/search?" + v.Encode() }

// searchClasses are the requests of each class over a catalog of n products
// of gen; identifiers are drawn from products that exist.
func searchClasses(gen naverEPGen, n int) []searchClass {
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return searchPath(v)
	}
	r := rand.New(rand.NewPCG(7, 7))
	ids := make([]string, 0, 200)
	for i := range cap(ids) {
		k := r.IntN(n)
		p := gen.product(k)
		switch i % 4 {
		case 0:
			ids = append(ids, q("q", p.SKU))
		case 1:
			ids = append(ids, q("q", p.GTIN))
		case 2:
			ids = append(ids, q("q", p.Attributes["model_number"]))
		default:
			// Half the products carry an MPN; the others are asked by model number.
			ids = append(ids, q("q", cmp.Or(p.Attributes["mpn"], p.Attributes["model_number"])))
		}
	}
	classes := []searchClass{
		{"broad", "one common word, ~1/12 to 1/16 of the catalog: 헤드폰, jbl, 이어폰, sony, 스피커", []string{
			q("q", "헤드폰"), q("q", "jbl"), q("q", "이어폰"), q("q", "sony"), q("q", "스피커")}},
		{"narrow", "three or four words, a few thousand matches", []string{
			q("q", "jbl 헤드폰 노이즈캔슬링"), q("q", "sony wireless earbuds 블랙"), q("q", "쿠쿠 전기밥솥 대용량 화이트"), q("q", "로지텍 게이밍 마우스 pro")}},
		{"filtered", "text + brand + price range (+ sort)", []string{
			q("q", "헤드폰", "brand", "JBL", "min_price", "50000", "max_price", "150000", "sort", "price_asc"),
			q("q", "무선 이어폰", "brand", "Sony", "brand", "Apple", "availability", "in_stock", "max_price", "200000"),
			q("q", "running shoes", "category", "패션잡화 > 남성신발", "min_price", "100000", "sort", "price_desc")}},
		{"faceted", "filters only, facets over the filtered set", []string{
			q("brand", "JBL"), q("category", "디지털/가전 > 음향가전"), q("category", "패션잡화", "availability", "in_stock"), q("partner", "naver-a", "brand", "Sony")}},
		{"korean", "Korean phrases", []string{
			q("q", "무선 이어폰"), q("q", "블루투스 스피커"), q("q", "기계식 키보드"), q("q", "무선 청소기")}},
		{"english", "English phrases", []string{
			q("q", "wireless earbuds"), q("q", "gaming mouse"), q("q", "power bank"), q("q", "running shoes")}},
		{"identifier", "an exact SKU, GTIN, model number or MPN of an existing product (200 of them)", ids},
		{"match-all", "no text, no filter: newest first and price order", []string{
			q(), q("sort", "newest"), q("sort", "price_asc")}},
		{"every-title", "a word every title holds (정품)", []string{q("q", "정품")}},
	}
	var mix []string
	for _, c := range classes {
		// A few of each, so every class weighs about the same in the mix.
		for i := range 4 {
			mix = append(mix, c.paths[i%len(c.paths)])
		}
	}
	return append(classes, searchClass{"mix", "all of the above, each class with the same weight", mix})
}

// searchRow is one measured line of the result table.
type searchRow struct {
	backend, class, mode string
	r                    wrkResult
	shown                string
	cpu                  time.Duration // CPU time of this process during the run; zero for another server's
}

type searchBench struct {
	cfg    SearchConfig
	l      Launcher
	stdout io.Writer
	log    func(format string, a ...any)
	rows   []searchRow
	notes  []string
	http   *http.Client
}

// Search builds (or reuses) an embedded index of cfg.Products Naver EP
// products directly through the index, serves it with the API and measures
// the query classes under wrk at full speed and paced; with ESURL, the same
// catalog on that node through the same API.
func Search(ctx context.Context, l Launcher, cfg SearchConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if _, err := exec.LookPath(cfg.Wrk); err != nil {
		return fmt.Errorf("bench search runs wrk, which was not found (%w); install it with `apt-get install -y wrk` or pass its path with --wrk", err)
	}
	b := &searchBench{cfg: cfg, l: l, stdout: stdout, http: &http.Client{Timeout: time.Minute},
		log: func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }}
	dir, cleanup, err := workDir(cfg.Dir, "feedline-bench-search-")
	if err != nil {
		return err
	}
	defer cleanup()
	gen := naverEPGen{seed: 1}
	if err := b.buildEmbedded(ctx, gen, filepath.Join(dir, "search")); err != nil {
		return err
	}
	size, err := dirSize(filepath.Join(dir, "search"))
	if err != nil {
		return err
	}
	b.notes = append(b.notes, fmt.Sprintf("embedded index: %d products, %.0f MiB on disk", cfg.Products, float64(size)/(1<<20)))
	if err := b.measure(ctx, "embedded", Run{DataDir: dir, Stages: []string{"api"}}, gen, cfg.Products); err != nil {
		return err
	}
	if cfg.ESURL != "" {
		if err := b.measureES(ctx, gen, dir); err != nil {
			return err
		}
	}
	b.print()
	return nil
}

// buildEmbedded fills the index in dir with the catalog unless it already
// holds it; products go in batches of 4,000 from two writers.
func (b *searchBench) buildEmbedded(ctx context.Context, gen naverEPGen, dir string) error {
	ix, err := embedsearch.Open(dir)
	if err != nil {
		return err
	}
	defer ix.Close()
	last := gen.product(b.cfg.Products - 1)
	if _, err := ix.Get(ctx, last.ID); err == nil {
		b.log("search: reusing the index in %s (it holds product %d)", dir, b.cfg.Products)
	} else {
		start := time.Now()
		if err := fill(ctx, ix, gen, b.cfg.Products, b.log); err != nil {
			return err
		}
		if err := ix.Flush(ctx); err != nil {
			return err
		}
		took := time.Since(start)
		b.notes = append(b.notes, fmt.Sprintf("embedded index built in %s (%.0f products/s, two writers, batches of 4,000)", took.Round(time.Second), float64(b.cfg.Products)/took.Seconds()))
	}
	return b.settle(ctx, ix)
}

// settle waits, up to ten minutes, until background merging has left the
// segment count unchanged for ten seconds: a catalog is searched long after
// it was loaded, not while its segments are still being merged.
func (b *searchBench) settle(ctx context.Context, ix *embedsearch.Index) error {
	start := time.Now()
	last, since := ix.Segments(), time.Now()
	for time.Since(since) < 10*time.Second && time.Since(start) < 10*time.Minute {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if n := ix.Segments(); n != last {
			last, since = n, time.Now()
		}
	}
	b.notes = append(b.notes, fmt.Sprintf("embedded index: %d segments after merging settled (waited %s)", last, time.Since(start).Round(time.Second)))
	return nil
}

// fill applies products [0, n) to ix in batches of 4,000 from two writers.
func fill(ctx context.Context, ix schemas.ProductIndex, gen naverEPGen, n int, log func(string, ...any)) error {
	const batch = 4000
	var next, done atomic.Int64
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	for range 2 {
		g.Go(func() error {
			for {
				from := int(next.Add(batch)) - batch
				if from >= n {
					return nil
				}
				changes := gen.changes(from, min(batch, n-from))
				if _, err := ix.Apply(ctx, changes); err != nil {
					return err
				}
				if d := done.Add(int64(len(changes))); d%100_000 < batch {
					log("search: %d of %d products indexed, %.0f/s", d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		})
	}
	return g.Wait()
}

func (b *searchBench) measureES(ctx context.Context, gen naverEPGen, dir string) error {
	node, err := probeSearchNode(ctx, b.cfg.ESURL)
	if err != nil {
		return err
	}
	defer func() {
		if err := node.drop(context.WithoutCancel(ctx)); err != nil {
			b.log("removing the bench indexes %s-*-v* from %s: %v", node.alias, node.urls[0], err)
		}
	}()
	n := b.cfg.ESProducts
	if n == 0 {
		n = b.cfg.Products
	}
	run := Run{DataDir: filepath.Join(dir, "es"), Stages: []string{"api"}}
	node.use(&run)
	ix, err := elasticsearch.Open(ctx, elasticsearch.Config{Addresses: run.ESURLs, Alias: run.ESAlias, Transport: run.ESTransport,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	start := time.Now()
	err = fill(ctx, ix, gen, n, b.log)
	if err == nil {
		err = ix.Flush(ctx)
	}
	if cerr := ix.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filling %s: %w", node.name, err)
	}
	b.notes = append(b.notes, fmt.Sprintf("%s: %d products indexed in %s (one shard, no replica)", node.name, n, time.Since(start).Round(time.Second)))
	var stats struct {
		All struct {
			Primaries struct {
				Store struct {
					Bytes int64 `json:"size_in_bytes"`
				} `json:"store"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	if _, err := node.call(ctx, "GET", "/"+run.ESAlias+"/_stats/store", &stats); err == nil {
		b.notes = append(b.notes, fmt.Sprintf("%s index: %.0f MiB on disk (primaries)", node.name, float64(stats.All.Primaries.Store.Bytes)/(1<<20)))
	}
	return b.measure(ctx, node.name, run, gen, n)
}

// measure starts the API over the run's index, times the first search of
// each class and runs wrk per class at full speed and paced.
func (b *searchBench) measure(ctx context.Context, backend string, run Run, gen naverEPGen, n int) error {
	run.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	sys, err := b.l.Start(ctx, run)
	if err != nil {
		return err
	}
	defer func() {
		if err := sys.Stop(context.WithoutCancel(ctx)); err != nil {
			b.log("stopping the %s system: %v", backend, err)
		}
	}()
	base := "http://" + sys.Addr()
	b.log("search: %s API up in %s", backend, time.Since(start).Round(time.Millisecond))
	classes := searchClasses(gen, n)
	if err := b.firstSearches(ctx, backend, base, classes); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "feedline-wrk-search-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rss := newRSSWatch()
	defer rss.stop()
	for _, c := range classes {
		if len(b.cfg.Classes) > 0 && !slices.Contains(b.cfg.Classes, c.name) {
			continue
		}
		script := filepath.Join(dir, c.name+".lua")
		if err := os.WriteFile(script, []byte(searchWrkScript(c.paths)), 0o644); err != nil {
			return err
		}
		stop := func() {}
		if c.name == "mix" && backend == "embedded" {
			if stop, err = startCPUProfile(b.cfg.CPUProfile); err != nil {
				return err
			}
		}
		cpu := processCPU()
		full, shown, err := b.wrk(ctx, base, script, b.cfg.Conns, 0)
		stop()
		if err != nil {
			return err
		}
		b.rows = append(b.rows, searchRow{backend, c.name, "full speed", full, shown, b.ownCPU(backend, cpu)})
		paced, shown, pacedCPU, err := b.paced(ctx, backend, base, script, full)
		if err != nil {
			return err
		}
		if pacedCPU == 0 {
			pacedCPU = b.rows[len(b.rows)-1].cpu // the full-speed run stands for it
		}
		b.rows = append(b.rows, searchRow{backend, c.name, fmt.Sprintf("paced to %d/s", b.cfg.Rate), paced, shown, pacedCPU})
	}
	b.notes = append(b.notes, fmt.Sprintf("%s: resident memory of the process while serving: up to %.0f MiB", backend, float64(rss.stop())/(1<<20)))
	return nil
}

// firstSearches times one search of each class right after the start,
// before any other, and checks that each answers 200 and that every
// identifier search finds its product first.
func (b *searchBench) firstSearches(ctx context.Context, backend, base string, classes []searchClass) error {
	var line []string
	for _, c := range classes {
		if c.name == "mix" {
			continue
		}
		start := time.Now()
		res, err := b.get(ctx, base+c.paths[0])
		if err != nil {
			return err
		}
		line = append(line, fmt.Sprintf("%s %s (total %d%s)", c.name, ms(time.Since(start)), res.Total, relation(res)))
	}
	b.notes = append(b.notes, fmt.Sprintf("%s, first search of each class after the start: %s", backend, strings.Join(line, ", ")))
	var ident searchClass
	for _, c := range classes {
		if c.name == "identifier" {
			ident = c
		}
	}
	found := 0
	for _, p := range ident.paths {
		res, err := b.get(ctx, base+p)
		if err != nil {
			return err
		}
		u, _ := url.Parse(p)
		id := u.Query().Get("q")
		if len(res.Hits) > 0 && hasIdentifier(res.Hits[0], id) {
			found++
		}
	}
	b.notes = append(b.notes, fmt.Sprintf("%s: %d of %d identifier searches have their product first", backend, found, len(ident.paths)))
	return nil
}

func hasIdentifier(p schemas.Product, id string) bool {
	return strings.EqualFold(p.SKU, id) || p.GTIN == id || strings.EqualFold(p.Attributes["model_number"], id) || strings.EqualFold(p.Attributes["mpn"], id)
}

// searchAnswer is the part of a search answer the bench reads.
type searchAnswer struct {
	Total    uint64            `json:"total"`
	Relation string            `json:"total_relation"`
	Hits     []schemas.Product `json:"hits"`
}

func relation(a searchAnswer) string {
	if a.Relation == "gte" {
		return "+"
	}
	return ""
}

func (b *searchBench) get(ctx context.Context, u string) (searchAnswer, error) {
	var out searchAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return out, err
	}
	res, err := b.http.Do(req)
	if err != nil {
		return out, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		return out, fmt.Errorf("GET %s: %d %s", u, res.StatusCode, body)
	}
	return out, json.NewDecoder(res.Body).Decode(&out)
}

// wrk runs the script at conns connections, each waiting wait ms between
// requests (0: full speed).
func (b *searchBench) wrk(ctx context.Context, base, script string, conns int, wait float64) (wrkResult, string, error) {
	args := []string{fmt.Sprintf("-t%d", min(b.cfg.Threads, conns)), fmt.Sprintf("-c%d", conns), "--latency", "--timeout", "30s",
		fmt.Sprintf("-d%ds", int(math.Ceil(b.cfg.Duration.Seconds()))), "-s", script, base + "/"}
	if wait > 0 {
		args = append(args, "--", fmt.Sprintf("%.3f", wait))
	}
	shown := "wrk " + strings.Join(args, " ")
	out, err := exec.CommandContext(ctx, b.cfg.Wrk, args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, shown, fmt.Errorf("%s: %w\n%s", shown, err, out)
	}
	r, err := parseWrkSummary(out)
	if err != nil {
		return r, shown, fmt.Errorf("%s: %w\n%s", shown, err, out)
	}
	b.log("%s\n  %.1f searches/s, p50 %s, p99 %s, max %s, errors %d", filepath.Base(script), r.rate(), ms(r.P50), ms(r.P99), ms(r.Max), r.errors())
	return r, strings.ReplaceAll(shown, base, "http://<api>"), nil
}

// paced runs wrk at about cfg.Rate searches/s. Debian's wrk cannot hold a
// rate (-R is wrk2's): each connection waits between requests, the wait
// being the period less the latency of the full-speed run at one request
// in flight per connection. Below the rate at full speed, the paced run
// is the full-speed one again.
func (b *searchBench) paced(ctx context.Context, backend, base, script string, full wrkResult) (wrkResult, string, time.Duration, error) {
	period := float64(b.cfg.Conns) * 1000 / float64(b.cfg.Rate)
	latency := float64(b.cfg.Conns) * 1000 / max(full.rate(), 1e-9)
	if latency >= period {
		return full, "(as full speed: it stays below the rate)", 0, nil
	}
	// Under the lighter load the latency is lower than at full speed, so
	// a short calibration run measures it.
	calib, _, err := b.wrk(ctx, base, script, b.cfg.Conns, period)
	if err != nil {
		return calib, "", 0, err
	}
	latency = float64(b.cfg.Conns)*1000/max(calib.rate(), 1e-9) - period
	cpu := processCPU()
	r, shown, err := b.wrk(ctx, base, script, b.cfg.Conns, max(0, period-latency))
	return r, shown, b.ownCPU(backend, cpu), err
}

// searchWrkScript requests a random one of paths; with a number after
// "--", each connection waits that many milliseconds between requests.
func searchWrkScript(paths []string) string {
	return wrkScript("GET /v1/search, a random one of the paths", paths, `return wrk.format("GET", item)`, true)
}

func (b *searchBench) print() {
	host, _ := os.Hostname()
	fmt.Fprintf(b.stdout, "feedline bench search, %s, %d CPUs %s, %s, %s UTC\n\n", host, runtime.NumCPU(), cpuModel(), memTotal(), time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(b.stdout, "%d concurrent connections (%d wrk threads), %s per run\n\n", b.cfg.Conns, b.cfg.Threads, b.cfg.Duration)
	fmt.Fprintln(b.stdout, "| backend | class | load | searches/s | p50 | p99 | max | errors | CPU per search |")
	fmt.Fprintln(b.stdout, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range b.rows {
		perSearch := "(another process)"
		if r.cpu > 0 && r.r.Requests > 0 {
			perSearch = ms(r.cpu / time.Duration(r.r.Requests))
		}
		fmt.Fprintf(b.stdout, "| %s | %s | %s | %.1f | %s | %s | %s | %d | %s |\n", r.backend, r.class, r.mode, r.r.rate(), ms(r.r.P50), ms(r.r.P99), ms(r.r.Max), r.r.errors(), perSearch)
	}
	fmt.Fprintln(b.stdout, "\nCPU per search is the CPU time (user + system) of this process, which serves the embedded API, during the run divided by the searches answered in it: "+
		"on a shared machine it says what a search costs where searches/s and latencies say how much CPU the other tenants left.")
	fmt.Fprintln(b.stdout)
	for _, n := range b.notes {
		fmt.Fprintln(b.stdout, "- "+n)
	}
}

// ownCPU is the CPU this process spent since start, for the embedded
// backend whose API it serves.
func (b *searchBench) ownCPU(backend string, start time.Duration) time.Duration {
	if backend != "embedded" {
		return 0
	}
	return processCPU() - start
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// rssWatch samples the process's resident set every 250 ms; stop returns
// the highest sample.
type rssWatch struct {
	high atomic.Int64
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newRSSWatch() *rssWatch {
	w := &rssWatch{done: make(chan struct{})}
	w.wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if v := currentRSS(); v > w.high.Load() {
				w.high.Store(v)
			}
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	})
	return w
}

func (w *rssWatch) stop() int64 {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
	return w.high.Load()
}

// currentRSS reads the process's resident set size (Linux).
func currentRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

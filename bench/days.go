package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"feedline/api"
)

// A day of a service that lives for months: the partner re-uploads its
// whole feed with some prices changed again, shoppers post, and the
// operator restarts for a release. days runs cfg.Days of them on the data
// the first upload left, so restart time, memory and disk can be read
// against the number of days behind them.

// dayPoint is what one day's restart found.
type dayPoint struct {
	day      int
	upload   time.Duration
	posts    int // posts since the first day
	restart  time.Duration
	ready    residentMemory
	searched residentMemory // after four searches and a feed page
	disk     dayDisk
}

// dayDisk is the data directory and the parts that grow with days.
type dayDisk struct {
	total, raw, files, products, social, search, checkpoints int64
}

func measureDayDisk(dataDir string) dayDisk {
	streams := filepath.Join(dataDir, "jetstream", "jetstream", "$G", "streams")
	size := func(p string) int64 { n, _ := DirSize(p); return n }
	return dayDisk{
		total:       size(dataDir),
		raw:         size(filepath.Join(streams, "RAW")),
		files:       size(filepath.Join(streams, "OBJ_uploads")),
		products:    size(filepath.Join(streams, "PRODUCTS")),
		social:      size(filepath.Join(streams, "SOCIAL")),
		search:      size(filepath.Join(dataDir, "search")),
		checkpoints: size(filepath.Join(dataDir, "checkpoints")),
	}
}

// benchTokenKey is the shopper-token key startServe gives serve.
const benchTokenKey = "bench-token-key-0123456789"

// shoppers are the bench's posting users and their tokens.
type shoppers struct {
	ids    []string
	tokens []string
}

func newShoppers(n int) (shoppers, error) {
	s := shoppers{ids: make([]string, n), tokens: make([]string, n)}
	for i := range n {
		s.ids[i] = fmt.Sprintf("bench-shopper-%d", i)
		t, err := api.SignToken([]byte(benchTokenKey), s.ids[i], 30*24*time.Hour, time.Now())
		if err != nil {
			return s, err
		}
		s.tokens[i] = t
	}
	return s, nil
}

// shopperClient sends the shoppers' writes with a few connections at once.
type shopperClient struct {
	base string
	http *http.Client
}

const shopperWriters = 16

func (c shopperClient) send(ctx context.Context, method, path, token string, body any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	shopper := &apiClient{base: c.base, key: token, http: c.http}
	for attempt := 0; ; attempt++ {
		var err error
		if data != nil {
			err = shopper.do(ctx, method, path, "application/json", bytes.NewReader(data), int64(len(data)), nil)
		} else {
			err = shopper.do(ctx, method, path, "", nil, 0, nil)
		}
		// An embedded server under load may answer 503 for a moment.
		var p *problem
		if errors.As(err, &p) && p.Status == http.StatusServiceUnavailable && attempt < 5 {
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		return nil
	}
}

// each runs write(i) for i in [0, n) on shopperWriters goroutines.
func each(ctx context.Context, n int, write func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range min(n, shopperWriters) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := write(gctx, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// follow has every shopper follow the bench shop and ten other shoppers,
// so posts and price drops fan out into feeds.
func (c shopperClient) follow(ctx context.Context, s shoppers) error {
	n := len(s.ids)
	const others = 10
	return each(ctx, n*(others+1), func(ctx context.Context, k int) error {
		i, j := k/(others+1), k%(others+1)
		path := "/v1/follows/shop/" + benchPartnerID
		if j > 0 {
			path = "/v1/follows/user/" + s.ids[(i+j*97)%n]
		}
		return c.send(ctx, http.MethodPut, path, s.tokens[i], nil)
	})
}

// post sends n posts, the shoppers taking turns, numbered from first.
func (c shopperClient) post(ctx context.Context, s shoppers, first, n int) error {
	return each(ctx, n, func(ctx context.Context, i int) error {
		k := first + i
		return c.send(ctx, http.MethodPost, "/v1/posts", s.tokens[k%len(s.ids)], map[string]string{"text": postText(k)})
	})
}

// days runs cfg.Days days on the data of cur, the system the first
// restart started, and returns the system running at the end.
func days(ctx context.Context, cfg MemoryConfig, work, csvPath, dataDir string, cur *serveProcess, log func(string, ...any)) ([]dayPoint, *serveProcess, error) {
	if cfg.Days == 0 {
		return nil, cur, nil
	}
	users := max(1, cfg.Users)
	s, err := newShoppers(users)
	if err != nil {
		return nil, cur, err
	}
	sc := shopperClient{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: shopperWriters}, Timeout: time.Minute}}
	var points []dayPoint
	posted := 0
	prev := csvPath
	for day := 1; day <= cfg.Days; day++ {
		c := &apiClient{base: "http://" + cur.http, key: "bench-admin", log: log}
		sc.base = c.base
		file := filepath.Join(work, fmt.Sprintf("day-%02d.csv", day))
		if err := changePrices(prev, file, cfg.Changed); err != nil {
			return points, cur, err
		}
		prev = file
		d, _, err := benchUpload(ctx, c, file, true)
		if err != nil {
			return points, cur, fmt.Errorf("day %d upload: %w", day, err)
		}
		if day == 1 && cfg.Posts > 0 {
			if err := sc.follow(ctx, s); err != nil {
				return points, cur, fmt.Errorf("follows: %w", err)
			}
		}
		n := cfg.Posts*day/cfg.Days - posted
		if err := sc.post(ctx, s, posted, n); err != nil {
			return points, cur, fmt.Errorf("day %d posts: %w", day, err)
		}
		posted += n
		if err := cur.stop(); err != nil {
			return points, cur, err
		}
		next, err := startServe(ctx, cfg, dataDir, filepath.Join(work, fmt.Sprintf("serve-day-%02d.log", day)))
		if err != nil {
			return points, cur, err
		}
		cur = next
		if err := cur.waitReady(ctx); err != nil {
			return points, cur, err
		}
		p := dayPoint{day: day, upload: d, posts: posted, restart: time.Since(cur.started), ready: cur.resident()}
		sc.base = "http://" + cur.http
		c.base = sc.base
		for _, q := range []string{"", "q=Kettle", "q=Kettle&sort=price_asc", "brand=Acme"} {
			if err := c.do(ctx, "GET", "/v1/search?limit=20&"+q, "", nil, -1, nil); err != nil {
				return points, cur, fmt.Errorf("day %d search %q: %w", day, q, err)
			}
		}
		if err := sc.send(ctx, http.MethodGet, "/v1/feed?limit=20", s.tokens[0], nil); err != nil {
			return points, cur, fmt.Errorf("day %d feed: %w", day, err)
		}
		p.searched = cur.resident()
		p.disk = measureDayDisk(dataDir)
		log("day %d: upload %s, %d posts so far, restart → ready %s, resident %s, data %s MiB",
			day, d.Round(time.Millisecond), posted, p.restart.Round(time.Millisecond), p.ready, mib(p.disk.total))
		points = append(points, p)
	}
	return points, cur, nil
}

func printDays(w io.Writer, cfg MemoryConfig, fileSize int64, points []dayPoint) {
	if len(points) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d days: each a re-upload with %.0f %% of prices changed again, %d posts in all from %d shoppers (each following the shop and ten shoppers), then a restart\n\n",
		cfg.Days, cfg.Changed*100, cfg.Posts, cfg.Users)
	short := func(m residentMemory) string { return fmt.Sprintf("%s (%s)", inMiB(m.total), mib(m.anon)) }
	fmt.Fprintln(w, "| day | upload → searchable | posts so far | restart → ready | resident (anonymous), ready | after searches and a feed page | data dir | of it RAW + stored files | PRODUCTS | SOCIAL | search index | checkpoints | data ÷ input |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range points {
		fmt.Fprintf(w, "| %d | %.1f s | %d | %.2f s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n",
			p.day, p.upload.Seconds(), p.posts, p.restart.Seconds(), short(p.ready), short(p.searched), inMiB(p.disk.total), inMiB(p.disk.raw+p.disk.files),
			inMiB(p.disk.products), inMiB(p.disk.social), inMiB(p.disk.search), inMiB(p.disk.checkpoints), float64(p.disk.total)/float64(fileSize))
	}
}

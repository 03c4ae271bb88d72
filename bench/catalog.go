package bench

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"feedline/connectors/decode"
	"feedline/schemas"
)

// CatalogConfig is what "feedline bench" measures on the catalog path.
type CatalogConfig struct {
	Rows    int     // rows in the generated partner file
	Changed float64 // share of rows changed in the re-upload
	Dir     string  // work directory; empty: a temporary one, removed afterwards
	// Skip names steps left out: normalise, parquet, full, es,
	// distributed, reupload, restart (which needs full).
	Skip       []string
	CPUProfile string // a CPU profile of the whole run
	MemProfile string // a heap profile, taken when the heap was largest
	// MaxDeletePercent is the service's --max-delete-percent (0: its
	// default); 100 never holds, so full re-uploads are not staged.
	MaxDeletePercent int
	// ESURL names Elasticsearch (or OpenSearch) nodes, comma-separated, to
	// run the full pipeline on beside the embedded index.
	ESURL string
	// NATS runs decode + normalise once more on an outside NATS; with
	// ESURL, the full pipeline on the distributed path too.
	NATS *NATS
	// ClickHouseURL takes the analytics of the distributed run.
	ClickHouseURL string
}

// DefaultCatalogConfig is a million rows, 5% of them changed in the re-upload.
func DefaultCatalogConfig() CatalogConfig {
	return CatalogConfig{Rows: 1_000_000, Changed: 0.05}
}

// Validate checks the sizes and the outside NATS, when there is one.
func (c CatalogConfig) Validate() error {
	if c.Rows < 1 {
		return fmt.Errorf("--rows %d: want a whole number above 0", c.Rows)
	}
	if !(c.Changed > 0 && c.Changed <= 1) {
		return fmt.Errorf("--changed %g: want a share above 0 and at most 1", c.Changed)
	}
	if c.NATS != nil {
		return c.NATS.Validate()
	}
	return nil
}

// Catalog measures the catalog path end to end on the embedded default:
// raw decode (the baseline), decode + normalise, upload to searchable, and
// a re-upload with a share of rows changed; with ESURL, upload to
// searchable again with that node as the index; with ESURL and NATS both,
// once more on the distributed path (the outside NATS, the search node
// and, with ClickHouseURL, ClickHouse). It prints the result table to
// stdout and its progress to stderr.
func Catalog(ctx context.Context, l Launcher, cfg CatalogConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	onNATS := cfg.NATS
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	work, cleanup, err := workDir(cfg.Dir, "feedline-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	if cfg.MemProfile != "" {
		stop := watchHeap(cfg.MemProfile)
		defer stop()
	}
	var node *searchNode
	if cfg.ESURL != "" {
		var err error
		if node, err = probeSearchNode(ctx, cfg.ESURL); err != nil {
			return err
		}
		defer func() {
			if err := node.drop(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(stderr, "removing the bench indexes %s-*-v* from %s: %v\n", node.alias, node.urls[0], err)
			}
		}()
	}
	skipped := func(step string) bool { return slices.Contains(cfg.Skip, step) }
	log := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	report := &benchReport{rows: cfg.Rows}

	csvPath := filepath.Join(work, "catalog.csv")
	if err := writeFile(csvPath, func(w io.Writer) error { return decode.GenerateCSV(w, cfg.Rows, 1) }); err != nil {
		return err
	}
	parquetPath := filepath.Join(work, "catalog.parquet")
	if !skipped("parquet") {
		if err := writeFile(parquetPath, func(w io.Writer) error { return decode.GenerateParquet(w, cfg.Rows, 1) }); err != nil {
			return err
		}
	}
	changedPath := filepath.Join(work, "catalog-changed.csv")
	if err := changePrices(csvPath, changedPath, cfg.Changed); err != nil {
		return err
	}
	st, _ := os.Stat(csvPath)
	report.input = st.Size()
	log("generated %d rows (%.1f MiB CSV) in %s", cfg.Rows, float64(st.Size())/(1<<20), work)

	// Baseline: the decoder alone, same file, same process.
	d, err := decodeOnly(csvPath)
	if err != nil {
		return err
	}
	report.add("decode only (CSV, baseline)", d, cfg.Rows)
	log("decode only: %s", d)

	// on says where a run's outside systems are: nil for the embedded default.
	type on struct {
		es         *searchNode
		bus        *NATS
		clickhouse string
	}
	// With measure, a run also reads the data directory after each upload
	// settled and again once the upload retention has passed, and makes a
	// third upload: the re-upload's file again, so nothing in it changed.
	run := func(name string, stages []string, file string, waitIndexed bool, dataDir string, uploads int, where on, measure bool) ([]time.Duration, error) {
		files := []string{file}
		for len(files) < uploads {
			files = append(files, changedPath)
		}
		if measure {
			files = append(files, files[len(files)-1])
		}
		r := Run{
			DataDir: dataDir, AdminKey: "bench-admin", Stages: stages, MaxDeletePercent: cfg.MaxDeletePercent,
			CheckpointEvery: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if where.es != nil {
			where.es.use(&r)
		}
		r.ClickHouseURL = where.clickhouse
		if where.bus != nil {
			// The step starts from nothing, as on a fresh embedded server.
			r.NATS = where.bus
			if err := l.EmptyNATS(ctx, *where.bus); err != nil {
				return nil, err
			}
		}
		sys, err := l.Start(ctx, r)
		if err != nil {
			return nil, err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = sys.Stop(sctx)
			if where.bus != nil {
				if err := l.EmptyNATS(sctx, *where.bus); err != nil {
					log("%s: %v", name, err)
				}
			}
		}()
		c := &apiClient{base: "http://" + sys.Addr(), key: "bench-admin", log: log}
		if err := benchPartner(ctx, c); err != nil {
			return nil, err
		}
		var out []time.Duration
		for i, f := range files {
			dur, status, err := benchUpload(ctx, c, f, waitIndexed)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			log("%s upload %d: %s %+v", name, i+1, dur.Round(time.Millisecond), status.Counts)
			out = append(out, dur)
			if measure {
				moment := "re-upload"
				switch i {
				case 0:
					moment = "upload"
				case len(files) - 1:
					moment = "unchanged re-upload"
				}
				p, err := measureDisk(ctx, sys, moment+" settled")
				if err != nil {
					return nil, err
				}
				if err := sys.Expire(ctx); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				after, err := measureDisk(ctx, sys, "retention passed")
				if err != nil {
					return nil, err
				}
				report.disk = append(report.disk, p, after)
				log("  data directory %s MiB settled, %s MiB once the retention passed", mib(p.disk.Total), mib(after.disk.Total))
			}
		}
		if waitIndexed {
			fams, err := ScrapeMetrics(ctx, c.base)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			report.fresh = append(report.fresh, freshLine{name, FreshnessOf(fams)})
		}
		return out, nil
	}

	if !skipped("normalise") {
		uploads := 2
		if skipped("reupload") {
			uploads = 1
		}
		ds, err := run("decode+normalise CSV", []string{"api", "ingest", "normalise"}, csvPath, false, filepath.Join(work, "data-normalise"), uploads, on{}, false)
		if err != nil {
			return err
		}
		report.add("upload + decode + normalise (CSV, index off)", ds[0], cfg.Rows)
		if len(ds) > 1 {
			report.add(fmt.Sprintf("re-upload, %.0f%% rows changed, decode + normalise (index off)", cfg.Changed*100), ds[1], cfg.Rows)
		}
		if onNATS != nil {
			ds, err := run("decode+normalise CSV on "+onNATS.name(), []string{"api", "ingest", "normalise"}, csvPath, false, filepath.Join(work, "data-nats"), uploads, on{bus: onNATS}, false)
			if err != nil {
				return err
			}
			report.add("upload + decode + normalise (CSV, index off) on "+onNATS.name(), ds[0], cfg.Rows)
			if len(ds) > 1 {
				report.add(fmt.Sprintf("re-upload, %.0f%% rows changed, decode + normalise (index off) on %s", cfg.Changed*100, onNATS.name()), ds[1], cfg.Rows)
			}
		}
	}
	if !skipped("parquet") {
		ds, err := run("decode+normalise Parquet", []string{"api", "ingest", "normalise"}, parquetPath, false, filepath.Join(work, "data-parquet"), 1, on{}, false)
		if err != nil {
			return err
		}
		report.add("upload + decode + normalise (Parquet, index off)", ds[0], cfg.Rows)
	}
	if !skipped("full") {
		uploads := 2
		if skipped("reupload") {
			uploads = 1
		}
		ds, err := run("full pipeline", nil, csvPath, true, filepath.Join(work, "data-full"), uploads, on{}, true)
		if err != nil {
			return err
		}
		report.add("upload to searchable (all stages)", ds[0], cfg.Rows)
		if len(ds) > 2 {
			report.add(fmt.Sprintf("re-upload, %.0f%% rows changed, to fully applied", cfg.Changed*100), ds[1], cfg.Rows)
		}
		if len(ds) > 1 {
			report.add("re-upload, unchanged, to fully applied", ds[len(ds)-1], cfg.Rows)
		}
		if !skipped("restart") {
			full, checkpointed, err := restarts(ctx, l, filepath.Join(work, "data-full"), log)
			if err != nil {
				return err
			}
			report.add("restart → /readyz, whole log replayed (checkpoints off)", full, cfg.Rows)
			report.add("restart → /readyz from checkpoints", checkpointed, cfg.Rows)
		}
	}
	if node != nil && !skipped("es") {
		uploads := 2
		if skipped("reupload") {
			uploads = 1
		}
		log("full pipeline on %s at %s", node.name, node.urls[0])
		ds, err := run("full pipeline, "+node.name, nil, csvPath, true, filepath.Join(work, "data-es"), uploads, on{es: node}, false)
		if err != nil {
			return err
		}
		report.add("upload to searchable (all stages, "+node.name+" index)", ds[0], cfg.Rows)
		if len(ds) > 1 {
			report.add(fmt.Sprintf("re-upload, %.0f%% rows changed, to fully applied (%s)", cfg.Changed*100, node.name), ds[1], cfg.Rows)
		}
	}
	if node != nil && onNATS != nil && !skipped("distributed") {
		uploads := 2
		if skipped("reupload") {
			uploads = 1
		}
		where := on{es: node, bus: onNATS, clickhouse: cfg.ClickHouseURL}
		name := onNATS.name() + " + " + node.name
		if where.clickhouse != "" {
			name += " + ClickHouse"
		}
		ds, err := run("full pipeline, "+name, nil, csvPath, true, filepath.Join(work, "data-distributed"), uploads, where, false)
		if err != nil {
			return err
		}
		report.add("upload to searchable (all stages, "+name+")", ds[0], cfg.Rows)
		if len(ds) > 1 {
			report.add(fmt.Sprintf("re-upload, %.0f%% rows changed, to fully applied (%s)", cfg.Changed*100, name), ds[1], cfg.Rows)
		}
	}
	report.peakRSS = peakRSS()
	report.print(stdout)
	return nil
}

func writeFile(path string, gen func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := gen(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// changePrices copies a generated CSV, raising the price of every n-th row.
func changePrices(src, dst string, share float64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	every := int(1 / share)
	return writeFile(dst, func(w io.Writer) error {
		r := csv.NewReader(bufio.NewReaderSize(in, 1<<20))
		r.FieldsPerRecord = -1
		r.LazyQuotes = true
		cw := csv.NewWriter(w)
		header, err := r.Read()
		if err != nil {
			return err
		}
		price := -1
		for i, h := range header {
			if h == "price" {
				price = i
			}
		}
		if price < 0 {
			return errors.New("generated file has no price column")
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		for n := 0; ; n++ {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if n%every == 0 && price < len(rec) {
				if v, err := strconv.ParseFloat(rec[price], 64); err == nil {
					rec[price] = strconv.FormatFloat(v+1, 'f', -1, 64)
				}
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}

func decodeOnly(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	d, err := decode.Open(f, schemas.DecoderOptions{})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	for {
		_, err := d.Next()
		if err == io.EOF {
			return time.Since(start), nil
		}
		var re *schemas.RowError
		if err != nil && !errors.As(err, &re) {
			return 0, err
		}
	}
}

// apiClient calls the API of a system the bench started, as its admin.
type apiClient struct {
	base, key string
	log       func(format string, a ...any)
	http      *http.Client // nil is http.DefaultClient
}

// problem is an answer of 300 or above, with the RFC 9457 title and detail
// when the API gave them.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func (p *problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%s (%d): %s", p.Title, p.Status, p.Detail)
	}
	return fmt.Sprintf("%s (%d)", p.Title, p.Status)
}

// do sends body (size bytes of contentType; nil sends nothing) and decodes
// a 2xx JSON answer into out; an error answer comes back as a *problem.
func (c *apiClient) do(ctx context.Context, method, path, contentType string, body io.Reader, size int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.http
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		p := &problem{Status: res.StatusCode, Title: res.Status}
		_ = json.Unmarshal(data, p)
		return p
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *apiClient) doJSON(ctx context.Context, method, path, body string) error {
	return c.do(ctx, method, path, "application/json", strings.NewReader(body), int64(len(body)), nil)
}

// benchPartnerID is the partner the benches upload as.
const benchPartnerID = "bench"

func benchPartner(ctx context.Context, c *apiClient) error {
	if err := c.doJSON(ctx, "POST", "/v1/partners", `{"id":"`+benchPartnerID+`"}`); err != nil {
		var p *problem
		if !errors.As(err, &p) || p.Status != 409 {
			return err
		}
	}
	return c.doJSON(ctx, "PUT", "/v1/partners/bench/mapping", decode.GeneratedMapping)
}

// benchUpload pushes a file and waits until it is normalised (or, with
// waitIndexed, done); the clock starts before the first byte is sent.
func benchUpload(ctx context.Context, c *apiClient, path string, waitIndexed bool) (time.Duration, schemas.UploadStatus, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, schemas.UploadStatus{}, err
	}
	defer f.Close()
	st, _ := f.Stat()
	start := time.Now()
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	if err := c.do(ctx, "POST", "/v1/partners/bench/uploads?mode=full", "application/octet-stream", f, st.Size(), &acc); err != nil {
		return 0, schemas.UploadStatus{}, err
	}
	c.log("  %.1f MiB stored in %s", float64(st.Size())/(1<<20), time.Since(start).Round(time.Millisecond))
	for {
		var s schemas.UploadStatus
		if err := c.do(ctx, "GET", "/v1/uploads/"+acc.UploadID, "", nil, -1, &s); err != nil {
			return 0, s, err
		}
		switch {
		case s.State == schemas.StateFailed:
			return 0, s, fmt.Errorf("upload failed: %s", s.Error)
		case s.State == schemas.StateHeld:
			return 0, s, fmt.Errorf("upload held: it would delete %d of %d products", s.Hold.WouldDelete, s.Hold.Live)
		case s.State == schemas.StateDone, !waitIndexed && s.Normalised:
			return time.Since(start), s, nil
		}
		select {
		case <-ctx.Done():
			return 0, s, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type benchLine struct {
	name string
	dur  time.Duration
	rows int
}

type benchReport struct {
	rows    int
	lines   []benchLine
	fresh   []freshLine
	peakRSS int64
	input   int64       // bytes of the uploaded file
	disk    []diskPoint // the full pipeline's data directory after each upload
}

// freshLine is the freshness of every sink after one step's uploads.
type freshLine struct {
	step  string
	sinks []Freshness
}

func (r *benchReport) add(name string, d time.Duration, rows int) {
	r.lines = append(r.lines, benchLine{name, d, rows})
}

func (r *benchReport) print(w io.Writer) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "feedline bench, %d rows, %s, %d CPUs (%s/%s), %s\n\n", r.rows, host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintln(w, "| step | time | rows/s | rate ÷ baseline rate |")
	fmt.Fprintln(w, "|---|---|---|---|")
	base := 0.0
	for i, l := range r.lines {
		rate := float64(l.rows) / l.dur.Seconds()
		if i == 0 {
			base = rate
		}
		fmt.Fprintf(w, "| %s | %.2f s | %.0f | %.3f |\n", l.name, l.dur.Seconds(), rate, rate/base)
	}
	if len(r.fresh) > 0 {
		fmt.Fprintln(w, "\naccept → visible (feedline_freshness_seconds), after each step's uploads:")
		fmt.Fprintln(w, "\n| step | sink | writes | p50 | p99 |")
		fmt.Fprintln(w, "|---|---|---|---|---|")
		for _, f := range r.fresh {
			for _, s := range f.sinks {
				fmt.Fprintf(w, "| %s | %s | %d | %.2f s | %.2f s |\n", f.step, s.Sink, s.Count, s.P50, s.P99)
			}
		}
	}
	printDisk(w, r.input, r.disk)
	if r.peakRSS > 0 {
		fmt.Fprintf(w, "\npeak resident memory of the process: %.0f MiB\n", float64(r.peakRSS)/(1<<20))
	}
}

// watchHeap writes a heap profile to path each time the heap in use reaches
// a new high, checked every second.
func watchHeap(path string) (stop func()) {
	done := make(chan struct{})
	go func() {
		var high uint64
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= high {
				continue
			}
			high = ms.HeapInuse
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				_ = f.Close()
			}
		}
	}()
	return func() { close(done) }
}

// peakRSS reads the process's high-water resident set size (Linux).
func peakRSS() int64 { return procStatus(os.Getpid(), "VmHWM:") }

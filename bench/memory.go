package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"feedline/connectors/decode"
)

// MemoryConfig is one run of "feedline bench memory": feedline serve run
// as its own process, the way it is deployed, with its resident memory
// read from /proc while a generated catalog is uploaded to searchable and
// after a restart on the data that upload left.
type MemoryConfig struct {
	Binary string // the feedline binary to run as "serve"
	Rows   int
	Memory string // serve's --memory; empty sets none
	Dir    string // work directory; empty is a temporary one, removed afterwards
	// Days after the first restart: each re-uploads the feed with Changed
	// of its prices changed again, adds its share of Posts from Users
	// shoppers and restarts (see days).
	Days    int
	Changed float64
	Posts   int
	Users   int
	// CompactEvery is serve's --compact-every; empty keeps its default.
	CompactEvery string
}

// DefaultMemoryConfig is the size: one 1,000,000-row feed in 1 GiB;
// with --days, a daily 5 % of prices changed and 10,000 shoppers.
func DefaultMemoryConfig() MemoryConfig {
	return MemoryConfig{Rows: 1_000_000, Memory: "1GiB", Changed: 0.05, Users: 10_000}
}

// Validate refuses a run that cannot start.
func (c MemoryConfig) Validate() error {
	if c.Binary == "" {
		return errors.New("bench memory: no feedline binary to run")
	}
	if c.Rows < 1 {
		return fmt.Errorf("bench memory: --rows %d: want at least 1", c.Rows)
	}
	if c.Days < 0 || c.Posts < 0 || c.Users < 1 {
		return fmt.Errorf("bench memory: --days %d, --posts %d, --users %d: want days and posts of at least 0, users at least 1", c.Days, c.Posts, c.Users)
	}
	if c.Days > 0 && (c.Changed <= 0 || c.Changed > 1) {
		return fmt.Errorf("bench memory: --changed %g: want a share above 0 and at most 1", c.Changed)
	}
	if c.CompactEvery != "" {
		if _, err := time.ParseDuration(c.CompactEvery); err != nil {
			return fmt.Errorf("bench memory: --compact-every: %w", err)
		}
	}
	return nil
}

// Memory runs the memory bench and prints its table to stdout.
func Memory(ctx context.Context, cfg MemoryConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	work, cleanup, err := workDir(cfg.Dir, "feedline-bench-memory-")
	if err != nil {
		return err
	}
	defer cleanup()
	csvPath := filepath.Join(work, fmt.Sprintf("catalog-%d.csv", cfg.Rows))
	if _, err := os.Stat(csvPath); err != nil {
		if err := writeFile(csvPath, func(w io.Writer) error { return decode.GenerateCSV(w, cfg.Rows, 1) }); err != nil {
			return err
		}
	}
	st, err := os.Stat(csvPath)
	if err != nil {
		return err
	}
	dataDir := filepath.Join(work, "data")
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	log("%d rows (%.1f MiB CSV); serve --memory %q on %s", cfg.Rows, float64(st.Size())/(1<<20), cfg.Memory, dataDir)

	var rep memoryReport
	first, err := startServe(ctx, cfg, dataDir, filepath.Join(work, "serve-1.log"))
	if err != nil {
		return err
	}
	defer func() { _ = first.stop() }()
	c := &apiClient{base: "http://" + first.http, key: "bench-admin", log: log}
	if err := first.waitReady(ctx); err != nil {
		return err
	}
	rep.started = first.resident()
	if err := benchPartner(ctx, c); err != nil {
		return err
	}
	d, status, err := benchUpload(ctx, c, csvPath, true)
	if err != nil {
		return err
	}
	rep.upload, rep.products = d, status.Counts.Accepted
	rep.uploadPeak, rep.settled = first.peak(), first.resident()
	rep.heap = servedHeapInUse(ctx, c.base)
	log("upload to searchable in %s; peak resident %s", d.Round(time.Millisecond), rep.uploadPeak)
	if err := first.stop(); err != nil {
		return err
	}

	second, err := startServe(ctx, cfg, dataDir, filepath.Join(work, "serve-2.log"))
	if err != nil {
		return err
	}
	defer func() { _ = second.stop() }()
	if err := second.waitReady(ctx); err != nil {
		return err
	}
	rep.restart = time.Since(second.started)
	rep.ready = second.resident()
	c.base = "http://" + second.http
	for _, q := range []string{"", "q=Kettle", "q=Kettle&sort=price_asc", "brand=Acme"} {
		if err := c.do(ctx, "GET", "/v1/search?limit=20&"+q, "", nil, -1, nil); err != nil {
			return fmt.Errorf("search %q after the restart: %w", q, err)
		}
	}
	rep.restartPeak, rep.searched = second.peak(), second.resident()
	log("restart → ready in %s; peak resident %s", rep.restart.Round(time.Millisecond), rep.restartPeak)
	points, last, err := days(ctx, cfg, work, csvPath, dataDir, second, log)
	if last != second {
		defer func() { _ = last.stop() }()
	}
	if err != nil {
		return err
	}
	if err := last.stop(); err != nil {
		return err
	}
	rep.print(stdout, cfg, st.Size())
	printDays(stdout, cfg, st.Size(), points)
	return nil
}

func inMiB(n int64) string { return mib(n) + " MiB" }

// residentMemory is resident memory, all of it and the anonymous part
// (heap, stacks, the runtime); the rest is mapped files, the search index's.
type residentMemory struct{ total, anon int64 }

func (m residentMemory) String() string {
	return fmt.Sprintf("%s (anonymous %s, mapped files %s)", inMiB(m.total), inMiB(m.anon), inMiB(m.total-m.anon))
}

type memoryReport struct {
	upload, restart         time.Duration
	products                int64
	started, settled, ready residentMemory
	searched                residentMemory
	uploadPeak, restartPeak residentMemory
	heap                    int64 // Go heap in use once the upload settled
}

func (r memoryReport) print(w io.Writer, cfg MemoryConfig, fileSize int64) {
	limit := cfg.Memory
	if limit == "" {
		limit = "none"
	}
	fmt.Fprintf(w, "feedline bench memory: %d rows (%.0f MiB CSV), %d products, serve --memory %s\n\n", cfg.Rows, float64(fileSize)/(1<<20), r.products, limit)
	fmt.Fprintln(w, "| moment | resident | anonymous | mapped files |")
	fmt.Fprintln(w, "|---|---|---|---|")
	row := func(name string, m residentMemory) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, inMiB(m.total), inMiB(m.anon), inMiB(m.total-m.anon))
	}
	row("started, empty", r.started)
	row(fmt.Sprintf("peak, upload → searchable (%.1f s)", r.upload.Seconds()), r.uploadPeak)
	row(fmt.Sprintf("settled after the upload (Go heap in use %s)", inMiB(r.heap)), r.settled)
	row(fmt.Sprintf("restarted, ready (%.2f s)", r.restart.Seconds()), r.ready)
	row("peak, restart and four searches", r.restartPeak)
	row("after the searches", r.searched)
	fmt.Fprintln(w, "\npeaks are the highest of 100 ms samples (each part on its own) and the kernel's high-water mark (VmHWM) for the whole")
}

// serveProcess is one feedline serve child and what /proc says of it.
type serveProcess struct {
	cmd     *exec.Cmd
	http    string
	started time.Time
	exited  chan struct{} // closed when the process has ended; waitErr says how
	waitErr error
	high    atomic.Int64 // highest VmRSS sampled
	// anonHigh is the highest RssAnon sampled: the heap and the runtime,
	// without the index files mapped in (RssFile), which the kernel may
	// drop and read again.
	anonHigh atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

func startServe(ctx context.Context, cfg MemoryConfig, dataDir, logPath string) (*serveProcess, error) {
	httpAddr, err := freeLoopback()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeLoopback()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--data", dataDir, "--http", httpAddr, "--nats-listen", natsAddr}
	if cfg.Memory != "" {
		args = append(args, "--memory", cfg.Memory)
	}
	if cfg.CompactEvery != "" {
		args = append(args, "--compact-every", cfg.CompactEvery)
	}
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Env = append(os.Environ(), "FEEDLINE_ADMIN_KEY=bench-admin", "FEEDLINE_TOKEN_KEY="+benchTokenKey, "GOMEMLIMIT=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &serveProcess{cmd: cmd, http: httpAddr, started: time.Now(), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", cfg.Binary, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	go p.sample(ctx)
	return p, nil
}

// sample keeps the highest resident size seen, beside the kernel's
// high-water mark, which is read too when the process ends.
func (p *serveProcess) sample(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := p.rss()
		if n == 0 {
			return
		}
		if n > p.high.Load() {
			p.high.Store(n)
		}
		if a := p.anon(); a > p.anonPeak() {
			p.anonHigh.Store(a)
		}
	}
}

func (p *serveProcess) rss() int64 { return procStatus(p.cmd.Process.Pid, "VmRSS:") }

func (p *serveProcess) anon() int64 { return procStatus(p.cmd.Process.Pid, "RssAnon:") }

func (p *serveProcess) anonPeak() int64 { return p.anonHigh.Load() }

// resident is the process's resident memory now: all of it, and the
// anonymous part.
func (p *serveProcess) resident() residentMemory {
	return residentMemory{total: p.rss(), anon: p.anon()}
}

// peak is the highest resident memory seen: the total from the kernel's
// high-water mark as well, the anonymous part from the samples.
func (p *serveProcess) peak() residentMemory {
	return residentMemory{total: max(p.high.Load(), procStatus(p.cmd.Process.Pid, "VmHWM:")), anon: p.anonPeak()}
}

func (p *serveProcess) waitReady(ctx context.Context) error {
	for {
		res, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("serve exited before it was ready: %v", p.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(p.started) > 10*time.Minute {
			return errors.New("serve not ready after 10 minutes")
		}
	}
}

// stop asks for a clean stop, as an operator's SIGTERM does; once.
func (p *serveProcess) stop() error {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			var exit *exec.ExitError
			if p.waitErr != nil && !errors.As(p.waitErr, &exit) {
				p.stopErr = p.waitErr
			}
		case <-time.After(2 * time.Minute):
			_ = p.cmd.Process.Kill()
			p.stopErr = errors.New("serve did not stop within 2 minutes of SIGTERM")
		}
	})
	return p.stopErr
}

func procStatus(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// servedHeapInUse is go_memstats_heap_inuse_bytes of the process at base.
func servedHeapInUse(ctx context.Context, base string) int64 {
	fams, err := ScrapeMetrics(ctx, base)
	if err != nil {
		return 0
	}
	if f := fams["go_memstats_heap_inuse_bytes"]; f != nil && len(f.Metric) > 0 && f.Metric[0].Gauge != nil {
		return int64(f.Metric[0].Gauge.GetValue())
	}
	return 0
}

func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

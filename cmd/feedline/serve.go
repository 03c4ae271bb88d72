package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"feedline/api"
	"feedline/connectors/decode"
	"feedline/connectors/natskv"
	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/stages/analytics"
	"feedline/stages/fanout"
	"feedline/stages/index"
	"feedline/stages/ingest"
	"feedline/stages/normalise"
	"feedline/topology"
	"feedline/web"
)

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, stderr)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if cfg.Memory > 0 {
		// The heap collects harder as it nears the limit, instead of
		// growing to twice what is live (GOGC's default).
		debug.SetMemoryLimit(heapLimit(cfg.Memory))
		cfg.Log.Info("memory limit set", "memory_bytes", cfg.Memory, "heap_limit_bytes", heapLimit(cfg.Memory))
	}
	tp, stopTracing, err := openTracing(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	cfg.Tracing = tp
	sys, err := startSystem(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cfg.Log.Info("shutting down: draining stages")
	stopCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return sys.Stop(stopCtx)
}

// system is one running feedline process: bus, stages and API.
type system struct {
	cfg     serveConfig
	bus     *pipeline.Bus
	runner  *pipeline.Runner
	metrics *pipeline.Metrics
	ledger  natskv.Ledger
	index   schemas.ProductIndex
	sink    schemas.AnalyticsSink
	feeds   schemas.FeedStore
	app     *api.App
	stages  []string // every stage this process runs, as the runner names them
	addr    string
	wg      sync.WaitGroup
	httpErr chan error
	// stops undoes start-up, newest first: on a failed start and on Stop.
	stops []func(context.Context) error

	checkpoints       *pipeline.Checkpoints // nil when off
	checkpointSources []pipeline.CheckpointSource
	// norm is the normalise stage when it runs here, and compaction what
	// bounds its compaction of the product log.
	norm       *normalise.Stage
	compaction normalise.Compaction
	// httpMetrics are the API's request series, on metrics' registry.
	httpMetrics *api.HTTPMetrics
}

func startSystem(ctx context.Context, cfg serveConfig) (_ *system, err error) {
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	s := &system{cfg: cfg, httpErr: make(chan error, 1)}
	s.metrics, s.httpMetrics = processMetrics(cfg.DataDir)
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failedStartDrain)
			defer cancel()
			_ = s.Stop(stopCtx)
		}
	}()
	if s.bus, err = connectBus(ctx, cfg, cfg.NATS); err != nil {
		return nil, err
	}
	s.onStop(func(context.Context) error { s.bus.Close(); return nil })
	defer func() { err = undeclaredHint(cfg, err) }()
	if err := declare(ctx, cfg, s.bus); err != nil {
		return nil, err
	}
	kvUploads, err := s.bus.KV(ctx, topology.BucketUploads)
	if err != nil {
		return nil, err
	}
	s.ledger = natskv.Ledger{KV: kvUploads}
	// Normalise writes upload issue lists and the API reads them: say now,
	// not at the first upload, when the stream is missing.
	var issues natskv.Issues
	if cfg.runs("api") || cfg.runs("normalise") {
		if issues.Stream, err = s.bus.JetStream().Stream(ctx, topology.StreamIssues); err != nil {
			return nil, fmt.Errorf("open stream %s: %w", topology.StreamIssues, err)
		}
	}
	// Each bucket is opened only where a stage uses it: on a NATS with a
	// user per service, the others may not touch it.
	var files natskv.Files
	if cfg.runs("api") || cfg.runs("ingest") {
		if files.Store, err = s.bus.Objects(ctx, topology.ObjectUploads); err != nil {
			return nil, err
		}
	}
	// The API sweeps chunks of unfinished writes from the store's stream.
	if cfg.runs("api") {
		if files.Stream, err = s.bus.ObjectsStream(ctx, topology.ObjectUploads); err != nil {
			return nil, err
		}
	}
	var mappings natskv.Mappings
	if cfg.runs("api") || cfg.runs("ingest") || cfg.runs("normalise") {
		if mappings.KV, err = s.bus.KV(ctx, topology.BucketMappings); err != nil {
			return nil, err
		}
	}
	noteDeadLetter := func(ctx context.Context, d schemas.DeadLetter) {
		if d.Source.Upload == "" {
			return
		}
		if err := s.ledger.RecordFailure(ctx, d.Source.Upload, schemas.FailureRecord{Stage: d.Stage, Batch: d.Source.Batch, Error: d.Error}); err != nil {
			log.Error("could not note a dead-lettered batch on its upload", "upload", d.Source.Upload, "err", err)
		}
	}
	if s.runner, err = pipeline.NewRunner(s.bus, s.metrics, log, pipeline.OnDeadLetter(noteDeadLetter), pipeline.WithTracing(cfg.Tracing)); err != nil {
		return nil, err
	}
	pub := s.bus.Publisher()

	// The embedded index is one process's files: the API and the index
	// stage share it in that process. Elasticsearch is shared by all.
	if cfg.runs("index") || cfg.runs("api") {
		if s.index, err = openIndex(ctx, cfg, s.bus); err != nil {
			return nil, err
		}
		s.onStop(func(context.Context) error { _ = s.index.Close(); return nil })
	}
	if cfg.runs("analytics") {
		if s.sink, err = openAnalytics(ctx, cfg); err != nil {
			return nil, err
		}
		s.onStop(func(context.Context) error { _ = s.sink.Close(); return nil })
	}

	var configs []pipeline.Stage
	if cfg.runs("ingest") {
		tmp := filepath.Join(cfg.DataDir, "tmp")
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return nil, err
		}
		st := &ingest.Stage{Files: files, Ledger: s.ledger, Mappings: mappings, Open: decode.Open, Pub: pub, TempDir: tmp, Log: log.With("stage", "ingest"),
			MaxBytes: cfg.MaxFileBytes, MaxExpansion: cfg.MaxExpansion}
		configs = append(configs, st.Config())
	}
	var norm *normalise.Stage
	if cfg.runs("normalise") {
		if norm, err = normalise.New(ctx, s.bus, s.ledger, mappings, pub, log.With("stage", "normalise"), normalise.WithCheckpoints(s.checkpointStore())); err != nil {
			return nil, err
		}
		s.checkpointed(norm.Checkpoint())
		configs = append(configs, norm.Config())
		s.norm = norm
		// Shop news is judged against the timelines when the feed state is
		// reachable from here (opened below); else every batch that could
		// make news stays.
		// Series from the start, so the dashboard shows zero before a pass.
		for _, unit := range []string{"messages", "bytes"} {
			s.metrics.Compacted.WithLabelValues(topology.StreamProducts, unit)
		}
		s.compaction = normalise.Compaction{Checkpoints: s.checkpointStore(), Metrics: s.metrics,
			News: func(ctx context.Context) func(*schemas.ProductBatch) (bool, error) {
				return (&fanout.Stage{Store: s.feeds, Policy: cfg.Feed}).NewsShown(ctx)
			}}
	}
	if cfg.runs("index") {
		st := &index.Stage{Index: s.index, Ledger: s.ledger, Log: log.With("stage", "index"), Writers: 2, DeadLetter: s.runner.PublishDeadLetter}
		configs = append(configs, st.Config())
	}
	if cfg.runs("analytics") {
		st := &analytics.Stage{Sink: s.sink, Log: log.With("stage", "analytics")}
		configs = append(configs, st.Configs()...)
	}
	// The news feed. Its state lives in Redis when configured; else in the
	// process, rebuilt from the log now, and then the API and the fan-out
	// stage share it in this process.
	var reader *feed.Reader
	var posts natskv.Posts
	if cfg.runs("fanout") || cfg.runs("api") {
		kvPosts, err := s.bus.KV(ctx, topology.BucketPosts)
		if err != nil {
			return nil, err
		}
		posts = natskv.Posts{KV: kvPosts, JS: s.bus.JetStream()}
		kvReaders, err := s.bus.KV(ctx, topology.BucketReaders)
		if err != nil {
			return nil, err
		}
		reads := natskv.ReadLog{KV: kvReaders}
		if s.feeds, err = openFeedStore(ctx, cfg); err != nil {
			return nil, err
		}
		s.onStop(func(context.Context) error { _ = s.feeds.Close(); return nil })
		fan := &fanout.Stage{Store: s.feeds, Posts: posts, Reads: reads, Policy: cfg.Feed, Log: log.With("stage", "fanout")}
		if cfg.RedisURL == "" {
			start := time.Now()
			r, err := s.replayFeeds(ctx, fan)
			if err != nil {
				return nil, fmt.Errorf("rebuild feeds from the log: %w", err)
			}
			log.Info("feeds rebuilt from the log", "readers", r.Readers, "social_events", r.Social, "product_batches", r.Catalog, "rebuilt_feeds", r.Rebuilt, "took", time.Since(start))
		}
		if cfg.runs("fanout") {
			configs = append(configs, fan.Configs()...)
		}
		reader = &feed.Reader{Store: s.feeds, Posts: posts, Reads: reads, Policy: cfg.Feed}
		if lookup, ok := s.index.(schemas.ProductLookup); ok {
			reader.Products = lookup
		}
	}
	// Everything below runs until Stop, which cancels it before it closes
	// the stores opened above, and waits for it to finish.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Once the stages have drained, so a clean restart replays nothing.
	s.onStop(s.finalCheckpoints)
	s.onStop(func(ctx context.Context) error {
		cancel()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return errors.New("stages did not drain in time")
		}
	})
	if norm != nil {
		norm.Follow(runCtx)
		if cfg.CompactEvery > 0 {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				norm.RunCompaction(runCtx, cfg.CompactEvery, s.compaction)
			}()
		}
	}
	for _, c := range configs {
		c = withFreshness(c, s.metrics)
		s.stages = append(s.stages, c.Name)
		// Declare before returning so an upload accepted right after start
		// is never published before its consumer exists.
		if _, err := s.runner.Consumer(ctx, c); err != nil {
			return nil, err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.runner.Run(runCtx, c); err != nil {
				log.Error("stage failed", "stage", c.Name, "err", err)
			}
		}()
	}
	s.runCheckpoints(runCtx)

	metrics := promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
	switch {
	case cfg.runs("api"):
		// Previews of zip and Parquet samples spool here.
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, "tmp"), 0o755); err != nil {
			return nil, err
		}
		kvPartners, err := s.bus.KV(ctx, topology.BucketPartners)
		if err != nil {
			return nil, err
		}
		kvSources, err := s.bus.KV(ctx, topology.BucketSources)
		if err != nil {
			return nil, err
		}
		apiCfg := api.Config{
			AdminKey: cfg.AdminKey,
			Partners: natskv.Partners{KV: kvPartners},
			Synonyms: natskv.Partners{KV: kvPartners},
			Mappings: mappings,
			Ledger:   s.ledger,
			Files:    files,
			Index:    s.index,
			Currency: cfg.Currency,
			Detect:   decode.DetectFormat,
			Open:     decode.Open,
			TempDir:  filepath.Join(cfg.DataDir, "tmp"),
			Issues:   issues,
			Pub:      pub,
			Ready:    s.ready,
			Metrics:  metrics,
			Log:      log.With("component", "api"),
			NewID:    func() string { return strings.ToLower(ulid.Make().String()) },
			Now:      time.Now,
			Body:     cfg.Body,

			GlobalSynonyms:   cfg.Synonyms,
			MaxDeletePercent: cfg.MaxDeletePercent,
			IssueRetention:   topology.IssueRetention,
			MaxFileBytes:     cfg.MaxFileBytes,
			Uploads:          s.ledger,
			Slots:            s.ledger,
			MaxInFlight:      cfg.MaxInFlight,
			Stages:           consumerWatch{js: s.bus.JetStream()},
			Sources:          natskv.Sources{KV: kvSources},
			Fetch:            cfg.Fetch,
			Tracing:          cfg.Tracing,
			HTTPMetrics:      s.httpMetrics,
		}
		if reader != nil && cfg.TokenKey != "" {
			kvRequests, err := s.bus.KV(ctx, topology.BucketRequests)
			if err != nil {
				return nil, err
			}
			apiCfg.TokenKey, apiCfg.Feed, apiCfg.Social, apiCfg.Posts = []byte(cfg.TokenKey), reader, s.feeds, posts
			apiCfg.TokenMaxLifetime = cfg.TokenMaxLifetime
			apiCfg.Requests = natskv.Requests{KV: kvRequests}
		}
		// This process's analytics store, when it runs one, answers price histories.
		apiCfg.Prices, _ = s.sink.(schemas.PriceHistory)
		s.app = api.New(apiCfg)
		web.Mount(s.app.App)
		// An embedded server has had no writer before this process, so
		// whatever is unfinished now was left by an earlier one.
		first := time.Now().Add(-staleUpload)
		if s.bus.Embedded() {
			first = time.Now()
		}
		if _, err := s.sweepFiles(ctx, files, first, time.Now()); err != nil {
			return nil, err
		}
		s.wg.Add(3)
		go func() {
			defer s.wg.Done()
			s.sweepFilesEvery(runCtx, files, sweepEvery)
		}()
		go func() {
			defer s.wg.Done()
			s.app.RunSynonyms(runCtx)
		}()
		go func() {
			defer s.wg.Done()
			s.app.RunSources(runCtx)
		}()
	case cfg.HTTP != "":
		// A worker still answers health checks and Prometheus.
		s.app = api.NewOps(s.ready, metrics, log.With("component", "ops"))
	}
	if s.app != nil {
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", cfg.HTTP, err)
		}
		s.addr = ln.Addr().String()
		go func() { s.httpErr <- s.app.Listener(ln) }()
		s.onStop(func(ctx context.Context) error {
			if err := s.app.ShutdownWithContext(ctx); err != nil {
				return fmt.Errorf("api shutdown: %w", err)
			}
			return nil
		})
		log.Info("http listening", "addr", s.addr, "api", cfg.runs("api"))
	}
	log.Info("feedline started", "stages", cfg.Stages, "data", cfg.DataDir, "nats", s.bus.ClientURL(), "embedded", s.bus.Embedded())
	return s, nil
}

// onStop adds what undoes the step of start-up just taken. Stores close
// without a word, as the stages that used them have finished by then.
func (s *system) onStop(stop func(context.Context) error) { s.stops = append(s.stops, stop) }

// failedStartDrain bounds how long a failed start waits for what it began.
const failedStartDrain = 30 * time.Second

// Stored files no upload needs are removed: the chunks of a body whose
// process died mid-transfer, files whose upload was never recorded, and
// those of uploads finished longer than --upload-retention ago. A write
// younger than staleUpload may still be under way in another process.
const (
	staleUpload = time.Hour
	sweepEvery  = 10 * time.Minute
)

func (s *system) sweepFilesEvery(ctx context.Context, files natskv.Files, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := s.sweepFiles(ctx, files, time.Now().Add(-staleUpload), time.Now()); err != nil && ctx.Err() == nil {
				s.cfg.Log.Warn("sweeping stored files failed; retrying later", "err", err)
			}
		}
	}
}

// ready is true when JetStream answers, the search index takes requests
// (Elasticsearch's cluster health), the feed store serves (when it is an
// outside one, such as Redis) and every configured stage has its consumer
// bound (each of them: analytics and fanout run several); the error names
// what is not ready.
func (s *system) ready(ctx context.Context) error {
	if err := s.bus.Ready(ctx); err != nil {
		return err
	}
	if h, ok := s.index.(schemas.HealthChecker); ok {
		if err := h.Healthy(ctx); err != nil {
			return fmt.Errorf("search index not ready: %w", err)
		}
	}
	if h, ok := s.feeds.(schemas.HealthChecker); ok {
		if err := h.Healthy(ctx); err != nil {
			return fmt.Errorf("feed store: %w", err)
		}
	}
	if st := unbound(s.stages, s.runner.Bound()); st != "" {
		return fmt.Errorf("stage %s has no bound consumer", st)
	}
	return nil
}

// unbound is the first of stages whose consumer is not bound, or "".
func unbound(stages []string, bound map[string]bool) string {
	for _, st := range stages {
		if !bound[st] {
			return st
		}
	}
	return ""
}

// Stop stops accepting requests, lets in-flight batches finish, and closes
// the stores; anything not acknowledged is redelivered on the next start.
// It undoes start-up in reverse, and a second call does nothing.
func (s *system) Stop(ctx context.Context) error {
	var errs []error
	for i := len(s.stops) - 1; i >= 0; i-- {
		if err := s.stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.stops = nil
	return errors.Join(errs...)
}

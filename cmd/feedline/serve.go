package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"feedline/api"
	"feedline/connectors/decode"
	"feedline/connectors/natskv"
	"feedline/connectors/redisfeed"
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

// Stage names accepted by --stages; "api" is the HTTP API.
var allStages = []string{"api", "ingest", "normalise", "index", "analytics", "fanout"}

// setting is one configuration knob: a flag of serve/worker, and the
// environment variable that sets its default. Flag is empty for secrets,
// which are read from the environment only.
type setting struct{ Flag, Env, Default, Help string }

// settings is every name operators and compose.yaml configure feedline by.
// An outside system is used when its setting is set, the embedded one when not.
var settings = []setting{
	{"data", "FEEDLINE_DATA", "./data", "data directory (embedded JetStream, search index, analytics files, temp files)"},
	{"http", "FEEDLINE_HTTP", "127.0.0.1:8080", "HTTP listen address: the API, or health and metrics on a worker; empty serves no HTTP"},
	{"nats", "FEEDLINE_NATS", "", "outside NATS URLs, comma-separated; empty embeds a JetStream server"},
	{"nats-listen", "FEEDLINE_NATS_LISTEN", "127.0.0.1:4222", "client address of the embedded NATS server, for workers in other processes"},
	{"nats-replicas", "FEEDLINE_NATS_REPLICAS", "1", "replicas of every stream and bucket (3 on a NATS cluster)"},
	// Signing in to outside NATS; the embedded server makes its own credentials.
	{"nats-user", "FEEDLINE_NATS_USER", "", "NATS user for --nats; its password is FEEDLINE_NATS_PASSWORD (or put user:password@ in the URL)"},
	{"", "FEEDLINE_NATS_PASSWORD", "", "password of FEEDLINE_NATS_USER"},
	{"", "FEEDLINE_NATS_TOKEN", "", "NATS authentication token for --nats"},
	{"nats-nkey", "FEEDLINE_NATS_NKEY", "", "file holding the user NKey seed (SU...) to sign in to --nats with"},
	{"nats-creds", "FEEDLINE_NATS_CREDS", "", "NATS .creds file (user JWT and NKey seed) to sign in to --nats with"},
	{"nats-ca", "FEEDLINE_NATS_CA", "", "PEM CA certificates the NATS servers' certificates are checked against; turns on TLS"},
	{"nats-cert", "FEEDLINE_NATS_CERT", "", "PEM client certificate for NATS TLS; needs --nats-key"},
	{"nats-key", "FEEDLINE_NATS_KEY", "", "PEM private key of --nats-cert"},
	{"nats-inbox", "FEEDLINE_NATS_INBOX", "", "prefix of this process's NATS reply subjects (default _INBOX); give each NATS user its own so none can read another's replies"},
	{"nats-declare", "FEEDLINE_NATS_DECLARE", "true", "create or update the streams and buckets at start; false only uses them (for NATS users without the rights: run feedline nats declare first)"},
	{"stages", "FEEDLINE_STAGES", "all", "comma-separated stages to run: " + strings.Join(allStages, ",")},
	{"", "FEEDLINE_ADMIN_KEY", "", "admin API key (partner management); empty disables admin routes"},
	{"es-url", "FEEDLINE_ES_URL", "", "Elasticsearch addresses, comma-separated; empty uses the embedded index"},
	{"", "FEEDLINE_ES_USERNAME", "", "Elasticsearch user"},
	{"", "FEEDLINE_ES_PASSWORD", "", "Elasticsearch password"},
	{"es-alias", "FEEDLINE_ES_ALIAS", "products", "Elasticsearch alias searched and written; indexes behind it are <alias>-vN"},
	{"clickhouse", "FEEDLINE_CLICKHOUSE_URL", "", "ClickHouse DSN (clickhouse://user:pass@host:9000/db); empty writes Parquet files"},
	{"redis", "FEEDLINE_REDIS_URL", "", "Redis for feed caches and the follow graph: one server as redis://host:6379/0, a Redis Cluster as redis+cluster://host:port,host:port (rediss:// and rediss+cluster:// for TLS); empty keeps them in the process"},
	{"redis-prefix", "FEEDLINE_REDIS_PREFIX", redisfeed.DefaultPrefix, "prefix of every key of the feed state in Redis, so deployments sharing one Redis keep apart (no { or })"},
	{"", "FEEDLINE_TOKEN_KEY", "", "key that signs and verifies shopper tokens (at least 16 bytes); empty disables the feed routes"},
	{"token-max-lifetime", "FEEDLINE_TOKEN_MAX_LIFETIME", "720h", "longest a shopper token may be valid: one that expires later than this from now, or from its issue, is refused"},
	{"feed-cap", "FEEDLINE_FEED_CAP", "800", "entries kept per shopper's feed"},
	{"celebrity-followers", "FEEDLINE_CELEBRITY_FOLLOWERS", "10000", "followers above which an author is not fanned out to but merged at read time"},
	{"inactive-days", "FEEDLINE_INACTIVE_DAYS", "30", "days without a feed read after which fan-out skips a shopper (the feed is rebuilt on the next read)"},
	{"price-drop-percent", "FEEDLINE_PRICE_DROP_PERCENT", "10", "smallest price drop, in percent, that becomes feed news"},
	{"max-delete-percent", "FEEDLINE_MAX_DELETE_PERCENT", "30", "a full upload that would delete more than this share of a partner's live products is held until confirmed (1-100; 100 never holds); partners may set their own"},
	{"upload-idle-timeout", "FEEDLINE_UPLOAD_IDLE_TIMEOUT", "30s", "a request body (an upload) fails when no byte of it arrives for this long; also bounds reading request headers"},
	{"upload-min-rate", "FEEDLINE_UPLOAD_MIN_RATE", "1024", "bytes a second a request body must average once it has been arriving for the idle timeout"},
	// Partner files: how large an upload, and what it unpacks to, may be.
	{"max-file-size", "FEEDLINE_MAX_FILE_SIZE", "4GiB", "largest upload accepted, and most a gzip, bzip2 or zip file may unpack to (bytes, or with KiB, MiB, GiB)"},
	{"max-expansion", "FEEDLINE_MAX_EXPANSION", "200", "most bytes a packed upload may unpack to per packed byte, past its first 64 MiB: more is a zip bomb"},
	// The upload lifecycle and scheduled fetches of partner feeds.
	{"max-uploads-in-flight", "FEEDLINE_MAX_UPLOADS_IN_FLIGHT", "4", "uploads a partner may have received or processing at once (pushed, fetched or retried); more are answered 429 with Retry-After; 0 is no limit"},
	{"fetch-allow-private", "FEEDLINE_FETCH_ALLOW_PRIVATE", "false", "let scheduled fetches reach loopback, private and reserved addresses (a feed server on the operator's own network); link-local addresses (cloud metadata) are refused always"},
	{"fetch-timeout", "FEEDLINE_FETCH_TIMEOUT", "10m", "longest one fetch of a partner's feed may take, from the request to the stored file"},
	{"fetch-concurrency", "FEEDLINE_FETCH_CONCURRENCY", "16", "fetches one API process runs at once, each with its own connection and deadline"},
	{"checkpoint-every", "FEEDLINE_CHECKPOINT_EVERY", "1m", "how often derived state held in the process (normalise's catalog, the embedded feed state) is checkpointed under <data>/checkpoints, and on a clean stop, so a start replays only the log after it; 0 turns checkpoints off and every start replays the whole log"},
}

type serveConfig struct {
	DataDir       string
	HTTP          string
	NATS          string // outside NATS URLs; empty embeds a server
	NATSListen    string // embedded server's client address
	NATSReplicas  int
	NATSAuth      pipeline.ClientAuth // signs in to the outside NATS
	NATSInbox     string              // reply subject prefix; empty is _INBOX
	NATSNoDeclare bool                // use the streams and buckets, never create them
	AdminKey      string
	Stages        []string
	ESURLs        []string // empty: embedded search index
	ESUsername    string
	ESPassword    string
	ESAlias       string
	// ESTransport carries the Elasticsearch client's requests; nil is the
	// default HTTP transport. Not a setting: tests run the system on an
	// OpenSearch node through one that adds the product header.
	ESTransport   http.RoundTripper
	ClickHouseURL string // empty: Parquet files
	RedisURL      string // empty: feed state in the process
	RedisPrefix   string // starts every Redis key; empty is redisfeed.DefaultPrefix
	TokenKey      string
	Feed          feed.Policy
	Body          api.BodyLimits
	// MaxDeletePercent holds full uploads that would delete more of a
	// partner's catalog; 0 means schemas.DefaultMaxDeletePercent.
	MaxDeletePercent int
	// MaxFileBytes bounds an upload and what it unpacks to; MaxExpansion
	// its unpacked bytes per packed byte. 0 takes the decoder's defaults.
	MaxFileBytes int64
	MaxExpansion int
	// MaxInFlight bounds a partner's uploads received or processing at
	// once; 0 is no bound.
	MaxInFlight int
	// TokenMaxLifetime refuses shopper tokens valid for longer.
	TokenMaxLifetime time.Duration
	// Fetch says how partners' feeds are fetched. Its MinEvery, RetryAfter
	// and Tick are not settings: tests shorten them.
	Fetch api.FetchConfig
	// CheckpointEvery is how often derived state is checkpointed; 0 never.
	CheckpointEvery time.Duration
	Log             *slog.Logger
	// Tracing traces uploads and writes through every stage; nil (the
	// default: OTEL_TRACES_EXPORTER unset) traces nothing.
	Tracing trace.TracerProvider
}

func (c serveConfig) runs(stage string) bool { return slices.Contains(c.Stages, stage) }

func parseStages(s string) ([]string, error) {
	if s == "" || s == "all" {
		return allStages, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allStages, p) {
			return nil, fmt.Errorf("unknown stage %q (known: %s)", p, strings.Join(allStages, ", "))
		}
		out = append(out, p)
	}
	return out, nil
}

// parseServeConfig reads the settings from flags, falling back to the
// environment, then to the defaults.
func parseServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	return parseSettings(flag.NewFlagSet("serve", flag.ContinueOnError), args, stderr)
}

// parseSettings reads the settings as parseServeConfig does, from a flag
// set that may carry a command's own flags too.
func parseSettings(fs *flag.FlagSet, args []string, stderr io.Writer) (serveConfig, error) {
	fs.SetOutput(stderr)
	values := map[string]*string{}
	for _, st := range settings {
		if st.Flag == "" {
			v := os.Getenv(st.Env)
			values[st.Env] = &v
			continue
		}
		values[st.Env] = fs.String(st.Flag, env(st.Env, st.Default), st.Help+" ($"+st.Env+")")
	}
	fs.Usage = func() {
		name := fs.Name()
		if name == "serve" {
			name = "serve|worker"
		}
		fmt.Fprintf(fs.Output(), "Usage: feedline %s [flags]\n", name)
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "Environment only:")
		for _, st := range settings {
			if st.Flag == "" {
				fmt.Fprintf(fs.Output(), "  %s\n    \t%s\n", st.Env, st.Help)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return serveConfig{}, err
	}
	get := func(name string) string { return strings.TrimSpace(*values[name]) }
	cfg := serveConfig{
		DataDir:       get("FEEDLINE_DATA"),
		HTTP:          get("FEEDLINE_HTTP"),
		NATS:          get("FEEDLINE_NATS"),
		NATSListen:    get("FEEDLINE_NATS_LISTEN"),
		AdminKey:      get("FEEDLINE_ADMIN_KEY"),
		ESUsername:    get("FEEDLINE_ES_USERNAME"),
		ESPassword:    *values["FEEDLINE_ES_PASSWORD"],
		ESAlias:       get("FEEDLINE_ES_ALIAS"),
		ClickHouseURL: get("FEEDLINE_CLICKHOUSE_URL"),
		RedisURL:      get("FEEDLINE_REDIS_URL"),
		RedisPrefix:   get("FEEDLINE_REDIS_PREFIX"),
		TokenKey:      *values["FEEDLINE_TOKEN_KEY"],
	}
	var err error
	ints := map[string]*int{
		"FEEDLINE_FEED_CAP": &cfg.Feed.FeedCap, "FEEDLINE_CELEBRITY_FOLLOWERS": &cfg.Feed.CelebrityFollowers,
		"FEEDLINE_PRICE_DROP_PERCENT": &cfg.Feed.PriceDropPercent,
	}
	var inactiveDays int
	ints["FEEDLINE_INACTIVE_DAYS"] = &inactiveDays
	for name, dst := range ints {
		if *dst, err = strconv.Atoi(get(name)); err != nil || *dst < 1 {
			return cfg, fmt.Errorf("%s %q: want a whole number above 0", name, get(name))
		}
	}
	if cfg.Feed.PriceDropPercent > 99 {
		return cfg, fmt.Errorf("FEEDLINE_PRICE_DROP_PERCENT %d: want 1 to 99", cfg.Feed.PriceDropPercent)
	}
	cfg.Feed.TimelineCap = cfg.Feed.FeedCap
	cfg.Feed.InactiveAfter = time.Duration(inactiveDays) * 24 * time.Hour
	if cfg.TokenKey != "" && len(cfg.TokenKey) < 16 {
		return cfg, errors.New("FEEDLINE_TOKEN_KEY is shorter than 16 bytes; use a long random string")
	}
	if cfg.TokenMaxLifetime, err = time.ParseDuration(get("FEEDLINE_TOKEN_MAX_LIFETIME")); err != nil || cfg.TokenMaxLifetime < time.Minute {
		return cfg, fmt.Errorf("FEEDLINE_TOKEN_MAX_LIFETIME %q: want a duration of at least 1m, such as 720h", get("FEEDLINE_TOKEN_MAX_LIFETIME"))
	}
	if cfg.MaxDeletePercent, err = strconv.Atoi(get("FEEDLINE_MAX_DELETE_PERCENT")); err != nil || cfg.MaxDeletePercent < 1 || cfg.MaxDeletePercent > 100 {
		return cfg, fmt.Errorf("FEEDLINE_MAX_DELETE_PERCENT %q: want a whole number from 1 to 100", get("FEEDLINE_MAX_DELETE_PERCENT"))
	}
	if cfg.Body.Idle, err = time.ParseDuration(get("FEEDLINE_UPLOAD_IDLE_TIMEOUT")); err != nil || cfg.Body.Idle < time.Second {
		return cfg, fmt.Errorf("FEEDLINE_UPLOAD_IDLE_TIMEOUT %q: want a duration of at least 1s, such as 30s", get("FEEDLINE_UPLOAD_IDLE_TIMEOUT"))
	}
	if cfg.Body.MinRate, err = strconv.ParseInt(get("FEEDLINE_UPLOAD_MIN_RATE"), 10, 64); err != nil || cfg.Body.MinRate < 1 {
		return cfg, fmt.Errorf("FEEDLINE_UPLOAD_MIN_RATE %q: want a whole number of bytes a second above 0", get("FEEDLINE_UPLOAD_MIN_RATE"))
	}
	if cfg.MaxFileBytes, err = parseSize(get("FEEDLINE_MAX_FILE_SIZE")); err != nil || cfg.MaxFileBytes < 1<<20 {
		return cfg, fmt.Errorf("FEEDLINE_MAX_FILE_SIZE %q: want a size of at least 1MiB, such as 4GiB", get("FEEDLINE_MAX_FILE_SIZE"))
	}
	if cfg.MaxExpansion, err = strconv.Atoi(get("FEEDLINE_MAX_EXPANSION")); err != nil || cfg.MaxExpansion < 2 {
		return cfg, fmt.Errorf("FEEDLINE_MAX_EXPANSION %q: want a whole number of at least 2", get("FEEDLINE_MAX_EXPANSION"))
	}
	if err := parseSourceSettings(&cfg, get); err != nil {
		return cfg, err
	}
	if err := parseCheckpointSettings(&cfg, get); err != nil {
		return cfg, err
	}
	if cfg.RedisURL != "" {
		if err := redisfeed.CheckURL(cfg.RedisURL); err != nil {
			return cfg, fmt.Errorf("FEEDLINE_REDIS_URL (--redis): %w", err)
		}
	}
	// Braces would move keys out of their user's hash slot.
	if strings.ContainsAny(cfg.RedisPrefix, "{}") {
		return cfg, fmt.Errorf("FEEDLINE_REDIS_PREFIX (--redis-prefix) %q: want a prefix without { or }, such as \"feedline-staging:\"", cfg.RedisPrefix)
	}
	if cfg.Stages, err = parseStages(get("FEEDLINE_STAGES")); err != nil {
		return cfg, err
	}
	if cfg.NATSReplicas, err = strconv.Atoi(get("FEEDLINE_NATS_REPLICAS")); err != nil || cfg.NATSReplicas < 1 || cfg.NATSReplicas > 5 {
		return cfg, fmt.Errorf("nats-replicas %q: want a number from 1 to 5", get("FEEDLINE_NATS_REPLICAS"))
	}
	if err := parseNATSAuth(&cfg, get, values); err != nil {
		return cfg, err
	}
	for _, u := range strings.Split(get("FEEDLINE_ES_URL"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.ESURLs = append(cfg.ESURLs, u)
		}
	}
	return cfg, nil
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, stderr)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	httpErr chan error

	checkpoints       *pipeline.Checkpoints // nil when off
	checkpointSources []pipeline.CheckpointSource
	// httpMetrics are the API's request series, on metrics' registry.
	httpMetrics *api.HTTPMetrics
}

func startSystem(ctx context.Context, cfg serveConfig) (_ *system, err error) {
	log := cfg.Log
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	s := &system{cfg: cfg, httpErr: make(chan error, 1)}
	s.metrics, s.httpMetrics = processMetrics(cfg.DataDir)
	defer func() {
		if err != nil {
			s.closeStores()
		}
	}()
	if s.bus, err = connectBus(ctx, cfg, cfg.NATS); err != nil {
		return nil, err
	}
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
	if cfg.runs("api") || cfg.runs("normalise") {
		if _, err := s.bus.JetStream().Stream(ctx, natskv.StreamIssues); err != nil {
			return nil, fmt.Errorf("open stream %s: %w", natskv.StreamIssues, err)
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
	s.runner = pipeline.NewRunner(s.bus, s.metrics, log)
	s.runner.Tracing = cfg.Tracing
	s.runner.DeadLettered = func(ctx context.Context, d schemas.DeadLetter) {
		if d.Source.Upload == "" {
			return
		}
		if err := s.ledger.RecordFailure(ctx, d.Source.Upload, schemas.FailureRecord{Stage: d.Stage, Batch: d.Source.Batch, Error: d.Error}); err != nil {
			log.Error("could not note a dead-lettered batch on its upload", "upload", d.Source.Upload, "err", err)
		}
	}
	pub := s.bus.Publisher()

	// The embedded index is one process's files: the API and the index
	// stage share it in that process. Elasticsearch is shared by all.
	if cfg.runs("index") || cfg.runs("api") {
		if s.index, err = openIndex(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.runs("analytics") {
		if s.sink, err = openAnalytics(ctx, cfg); err != nil {
			return nil, err
		}
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
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	if cfg.runs("normalise") {
		st := normalise.New(s.ledger, mappings, pub, log.With("stage", "normalise"))
		st.Checkpoints = s.checkpointStore()
		if err := st.Rebuild(ctx, s.bus); err != nil {
			cancel()
			return nil, err
		}
		s.checkpointed(st.Checkpoint())
		st.Follow(runCtx)
		configs = append(configs, st.Config())
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
			cancel()
			return nil, err
		}
		posts = natskv.Posts{KV: kvPosts, JS: s.bus.JetStream()}
		kvReaders, err := s.bus.KV(ctx, topology.BucketReaders)
		if err != nil {
			cancel()
			return nil, err
		}
		reads := natskv.ReadLog{KV: kvReaders}
		if s.feeds, err = openFeedStore(ctx, cfg); err != nil {
			cancel()
			return nil, err
		}
		fan := &fanout.Stage{Store: s.feeds, Posts: posts, Reads: reads, Policy: cfg.Feed, Log: log.With("stage", "fanout")}
		if cfg.RedisURL == "" {
			start := time.Now()
			r, err := s.replayFeeds(ctx, fan)
			if err != nil {
				cancel()
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
	for _, c := range configs {
		c = withFreshness(c, s.metrics)
		s.stages = append(s.stages, c.Name)
		// Declare before returning so an upload accepted right after start
		// is never published before its consumer exists.
		if _, err := s.runner.Consumer(ctx, c); err != nil {
			cancel()
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
			cancel()
			return nil, err
		}
		kvPartners, err := s.bus.KV(ctx, topology.BucketPartners)
		if err != nil {
			cancel()
			return nil, err
		}
		kvSources, err := s.bus.KV(ctx, natskv.BucketSources)
		if err != nil {
			cancel()
			return nil, err
		}
		apiCfg := api.Config{
			AdminKey: cfg.AdminKey,
			Partners: natskv.Partners{KV: kvPartners},
			Mappings: mappings,
			Ledger:   s.ledger,
			Files:    files,
			Index:    s.index,
			Detect:   decode.DetectFormat,
			Open:     decode.Open,
			TempDir:  filepath.Join(cfg.DataDir, "tmp"),
			Issues:   natskv.Issues{JS: s.bus.JetStream()},
			Pub:      pub,
			Ready:    s.ready,
			Metrics:  metrics,
			Log:      log.With("component", "api"),
			NewID:    func() string { return strings.ToLower(ulid.Make().String()) },
			Now:      time.Now,
			Body:     cfg.Body,

			MaxDeletePercent: cfg.MaxDeletePercent,
			IssueRetention:   natskv.IssueRetention,
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
				cancel()
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
		if err := s.sweepFiles(ctx, files, first); err != nil {
			cancel()
			return nil, err
		}
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			s.sweepFilesEvery(runCtx, files, sweepEvery)
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
			cancel()
			return nil, fmt.Errorf("listen %s: %w", cfg.HTTP, err)
		}
		s.addr = ln.Addr().String()
		go func() { s.httpErr <- s.app.Listener(ln) }()
		log.Info("http listening", "addr", s.addr, "api", cfg.runs("api"))
	}
	log.Info("feedline started", "stages", cfg.Stages, "data", cfg.DataDir, "nats", s.bus.ClientURL(), "embedded", s.bus.Embedded())
	return s, nil
}

// Stored files no upload refers to are removed: the chunks of a body whose
// process died mid-transfer, and files whose upload was never recorded. A
// write younger than staleUpload may still be under way in another process.
const (
	staleUpload = time.Hour
	sweepEvery  = 10 * time.Minute
)

func (s *system) sweepFiles(ctx context.Context, files natskv.Files, cutoff time.Time) error {
	sw, err := files.Sweep(ctx, cutoff, func(ctx context.Context, name string) (bool, error) {
		_, err := s.ledger.Upload(ctx, name)
		if errors.Is(err, schemas.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("sweep stored files: %w", err)
	}
	if sw.Files+sw.Writes > 0 {
		s.cfg.Log.Info("removed stored files no upload refers to", "files", sw.Files, "unfinished_writes", sw.Writes, "chunks", sw.Chunks)
	}
	return nil
}

func (s *system) sweepFilesEvery(ctx context.Context, files natskv.Files, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := s.sweepFiles(ctx, files, time.Now().Add(-staleUpload)); err != nil && ctx.Err() == nil {
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
func (s *system) Stop(ctx context.Context) error {
	var errs []error
	if s.app != nil {
		if err := s.app.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api shutdown: %w", err))
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, errors.New("stages did not drain in time"))
	}
	if err := s.finalCheckpoints(ctx); err != nil {
		errs = append(errs, err)
	}
	s.closeStores()
	return errors.Join(errs...)
}

func (s *system) closeStores() {
	if s.index != nil {
		_ = s.index.Close()
	}
	if s.sink != nil {
		_ = s.sink.Close()
	}
	if s.feeds != nil {
		_ = s.feeds.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
}

// parseSize reads a byte count: a whole number, or one with a unit (KiB,
// MiB, GiB, TiB; KB, MB, GB, TB are read as the same powers of two).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"kib", 10}, {"mib", 20}, {"gib", 30}, {"tib", 40}, {"kb", 10}, {"mb", 20}, {"gb", 30}, {"tb", 40}, {"b", 0}} {
		if strings.HasSuffix(strings.ToLower(s), u.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), 1<<u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, KiB, MiB, GiB or TiB", s)
	}
	return n * mult, nil
}

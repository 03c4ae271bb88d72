package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"feedline/bench"
	"feedline/connectors/natskv"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// benchCmd runs "feedline bench": the catalog benchmark, or with "feed"
// first the news-feed one, on systems started in this process.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "feed" {
		cfg, err := parseFeedBenchConfig(args[1:], stderr)
		if err != nil {
			return err
		}
		return bench.Feed(ctx, benchLauncher{}, cfg, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "search" {
		cfg, err := parseSearchBenchConfig(args[1:], stderr)
		if err != nil {
			return err
		}
		return bench.Search(ctx, benchLauncher{}, cfg, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "memory" {
		cfg, err := parseMemoryBenchConfig(args[1:], stderr)
		if err != nil {
			return err
		}
		return bench.Memory(ctx, cfg, stdout, stderr)
	}
	cfg, err := parseCatalogBenchConfig(args, stderr)
	if err != nil {
		return err
	}
	// The OTEL_* variables trace the bench's systems as they would serve's,
	// so tracing's cost can be measured.
	tp, stopTracing, err := openTracing(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	return bench.Catalog(ctx, benchLauncher{tracing: tp}, cfg, stdout, stderr)
}

func parseCatalogBenchConfig(args []string, stderr io.Writer) (bench.CatalogConfig, error) {
	c := bench.DefaultCatalogConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Rows, "rows", c.Rows, "rows in the generated partner file")
	fs.Float64Var(&c.Changed, "changed", c.Changed, "share of rows changed in the re-upload")
	fs.StringVar(&c.Dir, "dir", "", "work directory (default: a temporary one, removed afterwards)")
	skip := fs.String("skip", "", "comma-separated steps to skip: normalise,parquet,full,es,distributed,reupload,restart")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a heap profile, taken when the heap was largest, to this file")
	fs.IntVar(&c.MaxDeletePercent, "max-delete-percent", 0, "the service's --max-delete-percent (0: its default); 100 never holds, so full re-uploads are not staged")
	fs.StringVar(&c.ESURL, "es-url", "", "also run the full pipeline with this Elasticsearch (or OpenSearch) node as the index, beside the embedded one")
	natsURLs := fs.String("nats", "", "also run decode + normalise on this outside NATS (comma-separated URLs), beside the embedded default; "+
		"feedline's streams and buckets there are deleted before and after: never point it at a system in use")
	replicas := fs.Int("nats-replicas", 3, "replicas of the streams and buckets on --nats")
	user := fs.String("nats-user", "admin", "NATS user for --nats, who may create and delete streams; its password is FEEDLINE_NATS_PASSWORD")
	fs.StringVar(&c.ClickHouseURL, "clickhouse", "", "ClickHouse DSN for the analytics of the distributed run (--es-url and --nats); its database is created when missing")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.Skip = strings.Split(*skip, ",")
	if *natsURLs != "" {
		c.NATS = &bench.NATS{URLs: *natsURLs, Replicas: *replicas, Auth: pipeline.ClientAuth{User: *user, Password: os.Getenv("FEEDLINE_NATS_PASSWORD")}}
	}
	return c, nil
}

func parseMemoryBenchConfig(args []string, stderr io.Writer) (bench.MemoryConfig, error) {
	c := bench.DefaultMemoryConfig()
	fs := flag.NewFlagSet("bench memory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Rows, "rows", c.Rows, "rows in the generated partner file")
	fs.StringVar(&c.Memory, "memory", c.Memory, "serve's --memory (empty: none)")
	fs.StringVar(&c.Dir, "dir", "", "work directory; a generated file of the same size there is reused (default: a temporary one, removed afterwards)")
	fs.StringVar(&c.Binary, "serve-binary", "", "the feedline binary run as serve, to measure another build (default: this one)")
	fs.IntVar(&c.Days, "days", c.Days, "days after the first restart, each a re-upload, posts and a restart")
	fs.Float64Var(&c.Changed, "changed", c.Changed, "days: share of the prices changed again by each day's re-upload")
	fs.IntVar(&c.Posts, "posts", c.Posts, "days: posts in all, spread over the days")
	fs.IntVar(&c.Users, "users", c.Users, "days: shoppers who post, each following the shop and ten others")
	fs.StringVar(&c.CompactEvery, "compact-every", c.CompactEvery, "serve's --compact-every (empty: serve's default)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("bench memory: this binary's path, to run it as serve: %w", err)
		}
		c.Binary = exe
	}
	return c, c.Validate()
}

func parseSearchBenchConfig(args []string, stderr io.Writer) (bench.SearchConfig, error) {
	c := bench.DefaultSearchConfig()
	fs := flag.NewFlagSet("bench search", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Products, "products", c.Products, "products in the generated catalog (two Naver EP feeds)")
	fs.StringVar(&c.Dir, "dir", "", "data directory; an index of the same catalog already in <dir>/search is reused (default: a temporary one, removed afterwards)")
	fs.StringVar(&c.ESURL, "es-url", "", "also measure this Elasticsearch (or OpenSearch) node, filled with the same catalog under an alias of its own that is removed afterwards")
	fs.IntVar(&c.ESProducts, "es-products", 0, "products on --es-url (0: as --products)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of each wrk run")
	fs.StringVar(&c.Wrk, "wrk", c.Wrk, "the wrk program")
	fs.IntVar(&c.Threads, "threads", c.Threads, "wrk threads")
	fs.IntVar(&c.Conns, "conns", c.Conns, "wrk connections: concurrent clients")
	fs.IntVar(&c.Rate, "rate", c.Rate, "searches per second of the paced runs")
	classes := fs.String("classes", "", "comma-separated query classes to run (default all): "+strings.Join(bench.SearchClasses(), ","))
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the process during the full-speed mix run to this file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: feedline bench search [--products N] [--dir DIR] [--es-url URL] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *classes != "" {
		for _, s := range strings.Split(*classes, ",") {
			c.Classes = append(c.Classes, strings.TrimSpace(s))
		}
	}
	return c, nil
}

func parseFeedBenchConfig(args []string, stderr io.Writer) (bench.FeedConfig, error) {
	def := bench.DefaultFeedConfig()
	c := def
	fs := flag.NewFlagSet("bench feed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.RedisURL, "redis", "", "Redis URL for the feed state, redis://host:port/db or redis+cluster://host:port,host:port (a scratch database: the bench leaves its data there); empty keeps it in the process")
	fs.BoolVar(&c.Flush, "flush", false, "empty the --redis database (every master of a cluster) before starting (it must be empty otherwise)")
	steps := fs.String("steps", strings.Join(def.Steps, ","), "comma-separated steps to run: "+strings.Join(bench.FeedSteps(), ","))
	fs.IntVar(&c.Followers, "followers", def.Followers, "fanout: active followers of the author whose posts are timed")
	fs.IntVar(&c.Posts, "posts", def.Posts, "fanout: posts timed one at a time, and posted in one burst")
	fs.IntVar(&c.Rate, "rate", def.Rate, "freshness: posts per second")
	fs.IntVar(&c.Authors, "authors", def.Authors, "freshness: authors taking turns to post")
	fs.IntVar(&c.Audience, "audience", def.Audience, "freshness: active followers of each author")
	fs.DurationVar(&c.Duration, "duration", def.Duration, "length of the freshness run and of each wrk run")
	fs.IntVar(&c.Users, "users", def.Users, "read: shoppers with full feeds, 1,000 of whom wrk reads as")
	fs.IntVar(&c.Follows, "follows", def.Follows, "read: authors each shopper follows")
	fs.StringVar(&c.Wrk, "wrk", def.Wrk, "read: the wrk program")
	fs.IntVar(&c.Threads, "threads", def.Threads, "read: wrk threads")
	fs.IntVar(&c.Conns, "conns", def.Conns, "read: wrk connections")
	fs.IntVar(&c.TargetRate, "target-rate", def.TargetRate, "read: requests per second the latency is also measured at, pacing wrk")
	fs.BoolVar(&c.Serve, "serve", false, "read: seed, print the wrk commands and keep serving until interrupted, instead of running wrk")
	fs.IntVar(&c.MemFeeds, "mem-feeds", def.MemFeeds, "memory: feeds of 800 entries seeded to weigh an entry")
	fs.StringVar(&c.Out, "out", "", "also write the result table to this file")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "read: write a CPU profile of this process during the full-speed wrk run to this file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: feedline bench feed [--redis URL] [--users N] [--duration D] [--out FILE] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Steps = nil
	for _, s := range strings.Split(*steps, ",") {
		c.Steps = append(c.Steps, strings.TrimSpace(s))
	}
	return c, nil
}

// benchLauncher starts the systems the bench measures, as serve does.
type benchLauncher struct {
	tracing trace.TracerProvider // nil: untraced
}

func (l benchLauncher) Start(ctx context.Context, r bench.Run) (bench.System, error) {
	cfg := serveConfig{
		DataDir: r.DataDir, HTTP: "127.0.0.1:0", AdminKey: r.AdminKey, Stages: r.Stages, TokenKey: r.TokenKey,
		MaxDeletePercent: r.MaxDeletePercent, RedisURL: r.RedisURL, ClickHouseURL: r.ClickHouseURL,
		ESURLs: r.ESURLs, ESAlias: r.ESAlias, ESTransport: r.ESTransport, CheckpointEvery: r.CheckpointEvery, Log: r.Log, Tracing: l.tracing,
	}
	if cfg.Stages == nil {
		cfg.Stages = allStages
	}
	if r.NATS != nil {
		cfg.NATS, cfg.NATSReplicas, cfg.NATSAuth = r.NATS.URLs, r.NATS.Replicas, r.NATS.Auth
	}
	sys, err := startSystem(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return benchSystem{sys}, nil
}

func (benchLauncher) EmptyNATS(ctx context.Context, n bench.NATS) error {
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{URL: n.URLs, Auth: n.Auth, Replicas: n.Replicas, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer bus.Close()
	return removeDeclared(ctx, bus)
}

// benchSystem is a started system as the bench sees it.
type benchSystem struct{ *system }

func (s benchSystem) Addr() string { return s.addr }

func (s benchSystem) Feeds() schemas.FeedStore { return s.feeds }

func (s benchSystem) Posts(ctx context.Context) (schemas.PostStore, error) {
	kv, err := s.bus.KV(ctx, topology.BucketPosts)
	if err != nil {
		return nil, err
	}
	return natskv.Posts{KV: kv, JS: s.bus.JetStream()}, nil
}

func (s benchSystem) Disk(ctx context.Context) (bench.Disk, error) {
	var d bench.Disk
	var err error
	if d.Total, err = bench.DirSize(s.cfg.DataDir); err != nil {
		return d, err
	}
	if d.Search, err = bench.DirSize(filepath.Join(s.cfg.DataDir, "search")); err != nil {
		return d, err
	}
	if d.Checkpoints, err = bench.DirSize(checkpointDir(s.cfg.DataDir)); err != nil {
		return d, err
	}
	for _, name := range append(topology.Feedline().StreamNames(), topology.Stores().StreamNames()...) {
		st, err := s.bus.JetStream().Stream(ctx, name)
		if err != nil {
			return d, fmt.Errorf("stream %s: %w", name, err)
		}
		sd := bench.StreamDisk{Name: name, Bytes: st.CachedInfo().State.Bytes}
		// The embedded server keeps a stream under jetstream/jetstream/<account>/streams/<name>.
		dirs, _ := filepath.Glob(filepath.Join(s.cfg.DataDir, "jetstream", "*", "*", "streams", name))
		for _, dir := range dirs {
			n, err := bench.DirSize(dir)
			if err != nil {
				return d, err
			}
			sd.Files += n
		}
		d.Streams = append(d.Streams, sd)
	}
	return d, nil
}

func (s benchSystem) Expire(ctx context.Context) error {
	files := natskv.Files{}
	var err error
	if files.Store, err = s.bus.Objects(ctx, topology.ObjectUploads); err != nil {
		return err
	}
	if files.Stream, err = s.bus.ObjectsStream(ctx, topology.ObjectUploads); err != nil {
		return err
	}
	now := time.Now().Add(s.cfg.UploadRetention + time.Minute)
	_, err = s.sweepFiles(ctx, files, now, now)
	return err
}

// removeDeclared deletes every stream Declare creates; for benchmarks and
// tests on a NATS of their own.
func removeDeclared(ctx context.Context, bus *pipeline.Bus) error {
	return bus.Undeclare(ctx, topology.Feedline())
}

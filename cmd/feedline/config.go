package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"feedline/api"
	"feedline/connectors/redisfeed"
	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
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
	{"currency", "FEEDLINE_CURRENCY", "KRW", "ISO 4217 currency a search's price filter or sort compares in when the request names none; products in other currencies are left out of it"},
	{"synonyms", "FEEDLINE_SYNONYMS", "", "file of synonym groups every search applies: one group a line, terms separated by commas, # comments; read at start (partners set their own through the API); empty applies none"},
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
	{"memory", "FEEDLINE_MEMORY", "", "memory the process may use (bytes, or with MiB, GiB): the Go heap's soft limit (GOMEMLIMIT) is set to 3/4 of it, the rest left to the search index's mapped files and the runtime; empty leaves the limit to GOMEMLIMIT, or none"},
	{"upload-retention", "FEEDLINE_UPLOAD_RETENTION", "24h", "how long after an upload finished (done, failed or cancelled; not held) its stored file and raw batches are kept, so a failed one can be retried and its dead letters replayed; then both are removed, its record, issues and products stay (at least 1h)"},
	{"checkpoint-every", "FEEDLINE_CHECKPOINT_EVERY", "1m", "how often derived state held in the process (normalise's catalog, the embedded feed state) is checkpointed under <data>/checkpoints, and on a clean stop, so a start replays only the log after it; 0 turns checkpoints off and every start replays the whole log"},
	{"compact-every", "FEEDLINE_COMPACT_EVERY", "1h", "how often the normalise stage compacts the product log: batches whose every change is superseded are removed, mostly superseded ones rewritten; 0 never"},
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
	Currency      string // what price searches compare in unless they say
	// Synonyms is the global synonym list every search applies, read from
	// the file FEEDLINE_SYNONYMS names at start.
	Synonyms schemas.SynonymList
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
	// Memory is what the process may use, in bytes; 0 leaves the heap's
	// limit as the runtime has it. Not applied by startSystem: the limit is
	// the whole process's, so only the serve command sets it.
	Memory int64
	// CheckpointEvery is how often derived state is checkpointed; 0 never.
	CheckpointEvery time.Duration
	// UploadRetention is how long a finished upload keeps its stored file
	// and raw batches.
	UploadRetention time.Duration
	// CompactEvery is how often the product log is compacted; 0 never.
	CompactEvery time.Duration
	Log          *slog.Logger
	// Tracing traces uploads and writes through every stage; nil (the
	// default: OTEL_TRACES_EXPORTER unset) traces nothing.
	Tracing trace.TracerProvider
}

func (c serveConfig) runs(stage string) bool { return slices.Contains(c.Stages, stage) }

func parseStages(s string) []string {
	if s == "" || s == "all" {
		return allStages
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// parseServeConfig reads the settings from flags, falling back to the
// environment, then to the defaults.
func parseServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	return parseSettings(flag.NewFlagSet("serve", flag.ContinueOnError), args, stderr)
}

// parseSettings reads the settings as parseServeConfig does, from a flag
// set that may carry a command's own flags too, and validates them.
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
	cfg, err := configFrom(values)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// configFrom reads the settings' values, by variable name, into a
// configuration. It refuses only what does not parse; Validate judges the
// values.
func configFrom(values map[string]*string) (serveConfig, error) {
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
		Currency:      get("FEEDLINE_CURRENCY"),
		ClickHouseURL: get("FEEDLINE_CLICKHOUSE_URL"),
		RedisURL:      get("FEEDLINE_REDIS_URL"),
		RedisPrefix:   get("FEEDLINE_REDIS_PREFIX"),
		TokenKey:      *values["FEEDLINE_TOKEN_KEY"],
	}
	var err error
	ints := map[string]*int{
		"FEEDLINE_FEED_CAP": &cfg.Feed.FeedCap, "FEEDLINE_CELEBRITY_FOLLOWERS": &cfg.Feed.CelebrityFollowers,
		"FEEDLINE_PRICE_DROP_PERCENT": &cfg.Feed.PriceDropPercent, "FEEDLINE_MAX_DELETE_PERCENT": &cfg.MaxDeletePercent,
		"FEEDLINE_MAX_EXPANSION": &cfg.MaxExpansion, "FEEDLINE_NATS_REPLICAS": &cfg.NATSReplicas,
	}
	var inactiveDays int
	ints["FEEDLINE_INACTIVE_DAYS"] = &inactiveDays
	for name, dst := range ints {
		if *dst, err = strconv.Atoi(get(name)); err != nil {
			return cfg, fmt.Errorf("%s %q: want a whole number", name, get(name))
		}
	}
	cfg.Feed.TimelineCap = cfg.Feed.FeedCap
	cfg.Feed.InactiveAfter = time.Duration(inactiveDays) * 24 * time.Hour
	if cfg.TokenMaxLifetime, err = time.ParseDuration(get("FEEDLINE_TOKEN_MAX_LIFETIME")); err != nil {
		return cfg, fmt.Errorf("FEEDLINE_TOKEN_MAX_LIFETIME %q: want a duration of at least 1m, such as 720h", get("FEEDLINE_TOKEN_MAX_LIFETIME"))
	}
	if cfg.Body.Idle, err = time.ParseDuration(get("FEEDLINE_UPLOAD_IDLE_TIMEOUT")); err != nil {
		return cfg, fmt.Errorf("FEEDLINE_UPLOAD_IDLE_TIMEOUT %q: want a duration of at least 1s, such as 30s", get("FEEDLINE_UPLOAD_IDLE_TIMEOUT"))
	}
	if cfg.Body.MinRate, err = strconv.ParseInt(get("FEEDLINE_UPLOAD_MIN_RATE"), 10, 64); err != nil {
		return cfg, fmt.Errorf("FEEDLINE_UPLOAD_MIN_RATE %q: want a whole number of bytes a second above 0", get("FEEDLINE_UPLOAD_MIN_RATE"))
	}
	if cfg.MaxFileBytes, err = parseSize(get("FEEDLINE_MAX_FILE_SIZE")); err != nil {
		return cfg, fmt.Errorf("FEEDLINE_MAX_FILE_SIZE %q: want a size of at least 1MiB, such as 4GiB", get("FEEDLINE_MAX_FILE_SIZE"))
	}
	if err := parseSourceSettings(&cfg, get); err != nil {
		return cfg, err
	}
	if m := get("FEEDLINE_MEMORY"); m != "" {
		if cfg.Memory, err = parseSize(m); err != nil {
			return cfg, fmt.Errorf("FEEDLINE_MEMORY %q: want a size of at least %dMiB, such as 1GiB, or nothing for no limit", m, minMemory>>20)
		}
	}
	if cfg.CheckpointEvery, err = time.ParseDuration(get("FEEDLINE_CHECKPOINT_EVERY")); err != nil {
		return cfg, fmt.Errorf("FEEDLINE_CHECKPOINT_EVERY %q: want a duration of at least 1s, such as 1m, or 0 for no checkpoints", get("FEEDLINE_CHECKPOINT_EVERY"))
	}
	if cfg.UploadRetention, err = time.ParseDuration(get("FEEDLINE_UPLOAD_RETENTION")); err != nil {
		return cfg, fmt.Errorf("FEEDLINE_UPLOAD_RETENTION %q: want a duration of at least 1h, such as 24h", get("FEEDLINE_UPLOAD_RETENTION"))
	}
	if cfg.CompactEvery, err = time.ParseDuration(get("FEEDLINE_COMPACT_EVERY")); err != nil {
		return cfg, fmt.Errorf("FEEDLINE_COMPACT_EVERY %q: want a duration of at least 1s, such as 1h, or 0 for no compaction", get("FEEDLINE_COMPACT_EVERY"))
	}
	if path := get("FEEDLINE_SYNONYMS"); path != "" {
		if cfg.Synonyms, err = readSynonyms(path); err != nil {
			return cfg, fmt.Errorf("FEEDLINE_SYNONYMS (--synonyms) %q: %w", path, err)
		}
	}
	cfg.Stages = parseStages(get("FEEDLINE_STAGES"))
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

// defaultConfig is the configuration of the settings' defaults alone.
func defaultConfig() (serveConfig, error) {
	values := map[string]*string{}
	for _, st := range settings {
		values[st.Env] = &st.Default
	}
	return configFrom(values)
}

// withDefaults fills what a configuration built in code leaves zero with
// the settings' defaults. HTTP, NATSListen and the outside systems stay as
// they are: empty means none. MaxInFlight stays too: 0 is no limit.
func (c serveConfig) withDefaults() (serveConfig, error) {
	d, err := defaultConfig()
	if err != nil {
		return c, fmt.Errorf("the settings' defaults: %w", err)
	}
	fill := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fillDuration := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Stages == nil {
		c.Stages = d.Stages
	}
	if c.ESAlias == "" {
		c.ESAlias = d.ESAlias
	}
	if c.Currency == "" {
		c.Currency = d.Currency
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = d.RedisPrefix
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = d.MaxFileBytes
	}
	if c.Body.MinRate == 0 {
		c.Body.MinRate = d.Body.MinRate
	}
	fill(&c.NATSReplicas, d.NATSReplicas)
	fill(&c.Feed.FeedCap, d.Feed.FeedCap)
	fill(&c.Feed.TimelineCap, d.Feed.TimelineCap)
	fill(&c.Feed.CelebrityFollowers, d.Feed.CelebrityFollowers)
	fill(&c.Feed.PriceDropPercent, d.Feed.PriceDropPercent)
	fill(&c.MaxDeletePercent, d.MaxDeletePercent)
	fill(&c.MaxExpansion, d.MaxExpansion)
	fill(&c.Fetch.Concurrency, d.Fetch.Concurrency)
	fillDuration(&c.Feed.InactiveAfter, d.Feed.InactiveAfter)
	fillDuration(&c.TokenMaxLifetime, d.TokenMaxLifetime)
	fillDuration(&c.Body.Idle, d.Body.Idle)
	fillDuration(&c.Fetch.Timeout, d.Fetch.Timeout)
	fillDuration(&c.UploadRetention, d.UploadRetention)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// settingDefault is the default of the setting read from variable name.
func settingDefault(name string) string {
	for _, st := range settings {
		if st.Env == name {
			return st.Default
		}
	}
	return ""
}

// Validate refuses values and combinations that cannot work, naming the
// setting and what it wants.
func (c serveConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" {
		bad("FEEDLINE_DATA (--data) is empty: want the directory feedline keeps its data in, such as ./data")
	}
	if len(c.Stages) == 0 {
		bad("FEEDLINE_STAGES (--stages) names no stage: want some of %s, or all", strings.Join(allStages, ","))
	}
	for i, st := range c.Stages {
		switch {
		case !slices.Contains(allStages, st):
			bad("unknown stage %q (known: %s)", st, strings.Join(allStages, ", "))
		case slices.Contains(c.Stages[:i], st):
			bad("FEEDLINE_STAGES (--stages) names stage %q twice: want each stage once", st)
		}
	}
	if c.runs("api") && c.HTTP == "" {
		bad("the api stage serves HTTP: set FEEDLINE_HTTP (--http), such as 127.0.0.1:8080, or leave api out of --stages")
	}

	if c.NATSReplicas < 1 || c.NATSReplicas > 5 {
		bad("nats-replicas %d: want a number from 1 to 5", c.NATSReplicas)
	}
	if c.NATS == "" {
		if c.NATSReplicas > 1 {
			bad("FEEDLINE_NATS_REPLICAS (--nats-replicas) %d needs a NATS cluster (--nats): the embedded server is one node, so its streams keep 1 replica", c.NATSReplicas)
		}
		if c.NATSNoDeclare {
			bad("FEEDLINE_NATS_DECLARE (--nats-declare) false is for an outside server (--nats): the embedded server is this process's own, which declares its streams and buckets")
		}
		if !c.NATSAuth.IsZero() {
			bad("the NATS sign-in settings are for an outside server (--nats); the embedded server makes its own credentials in %s",
				pipeline.EmbeddedCredentialsPath(c.DataDir))
		}
	}
	if err := c.NATSAuth.Check(c.NATS); err != nil {
		bad("NATS sign-in (FEEDLINE_NATS_USER/_PASSWORD/_TOKEN/_NKEY/_CREDS/_CA/_CERT/_KEY): %w", err)
	}

	if len(c.ESURLs) == 0 {
		if c.ESUsername != "" || c.ESPassword != "" {
			bad("FEEDLINE_ES_USERNAME and FEEDLINE_ES_PASSWORD sign in to Elasticsearch: set FEEDLINE_ES_URL (--es-url) too, or unset them for the embedded index")
		}
		if c.ESAlias != "" && c.ESAlias != settingDefault("FEEDLINE_ES_ALIAS") {
			bad("FEEDLINE_ES_ALIAS (--es-alias) %q names an Elasticsearch alias: set FEEDLINE_ES_URL (--es-url) too, or unset it for the embedded index", c.ESAlias)
		}
	}
	if _, ok := schemas.CurrencyCode(c.Currency); !ok {
		bad("FEEDLINE_CURRENCY (--currency) %q: want an ISO 4217 code, such as KRW or USD", c.Currency)
	}
	if c.RedisURL != "" {
		if err := redisfeed.CheckURL(c.RedisURL); err != nil {
			bad("FEEDLINE_REDIS_URL (--redis): %w", err)
		}
	} else if c.RedisPrefix != "" && c.RedisPrefix != settingDefault("FEEDLINE_REDIS_PREFIX") {
		bad("FEEDLINE_REDIS_PREFIX (--redis-prefix) %q starts keys in Redis: set FEEDLINE_REDIS_URL (--redis) too, or unset it to keep the feed state in the process", c.RedisPrefix)
	}
	// Braces would move keys out of their user's hash slot.
	if strings.ContainsAny(c.RedisPrefix, "{}") {
		bad("FEEDLINE_REDIS_PREFIX (--redis-prefix) %q: want a prefix without { or }, such as \"feedline-staging:\"", c.RedisPrefix)
	}

	if c.TokenKey != "" && len(c.TokenKey) < 16 {
		bad("FEEDLINE_TOKEN_KEY is shorter than 16 bytes; use a long random string")
	}
	if c.TokenMaxLifetime < time.Minute {
		bad("FEEDLINE_TOKEN_MAX_LIFETIME (--token-max-lifetime) %s: want a duration of at least 1m, such as 720h", c.TokenMaxLifetime)
	}
	for _, v := range []struct {
		name string
		n    int
	}{
		{"FEEDLINE_FEED_CAP (--feed-cap)", c.Feed.FeedCap},
		{"the timeline cap", c.Feed.TimelineCap},
		{"FEEDLINE_CELEBRITY_FOLLOWERS (--celebrity-followers)", c.Feed.CelebrityFollowers},
	} {
		if v.n < 1 {
			bad("%s %d: want a whole number above 0", v.name, v.n)
		}
	}
	if c.Feed.InactiveAfter < 24*time.Hour {
		bad("FEEDLINE_INACTIVE_DAYS (--inactive-days) %s: want a whole number of days above 0", c.Feed.InactiveAfter)
	}
	if c.Feed.PriceDropPercent < 1 || c.Feed.PriceDropPercent > 99 {
		bad("FEEDLINE_PRICE_DROP_PERCENT (--price-drop-percent) %d: want 1 to 99", c.Feed.PriceDropPercent)
	}

	if c.MaxDeletePercent < 1 || c.MaxDeletePercent > 100 {
		bad("FEEDLINE_MAX_DELETE_PERCENT (--max-delete-percent) %d: want a whole number from 1 to 100", c.MaxDeletePercent)
	}
	if c.Body.Idle < time.Second {
		bad("FEEDLINE_UPLOAD_IDLE_TIMEOUT (--upload-idle-timeout) %s: want a duration of at least 1s, such as 30s", c.Body.Idle)
	}
	if c.Body.MinRate < 1 {
		bad("FEEDLINE_UPLOAD_MIN_RATE (--upload-min-rate) %d: want a whole number of bytes a second above 0", c.Body.MinRate)
	}
	if c.MaxFileBytes < 1<<20 {
		bad("FEEDLINE_MAX_FILE_SIZE (--max-file-size) %d bytes: want a size of at least 1MiB, such as 4GiB", c.MaxFileBytes)
	}
	if c.MaxExpansion < 2 {
		bad("FEEDLINE_MAX_EXPANSION (--max-expansion) %d: want a whole number of at least 2", c.MaxExpansion)
	}
	if c.MaxInFlight < 0 {
		bad("FEEDLINE_MAX_UPLOADS_IN_FLIGHT (--max-uploads-in-flight) %d: want a whole number, 0 for no limit", c.MaxInFlight)
	}
	if c.Fetch.Timeout < time.Second {
		bad("FEEDLINE_FETCH_TIMEOUT (--fetch-timeout) %s: want a duration of at least 1s, such as 10m", c.Fetch.Timeout)
	}
	if c.Fetch.Concurrency < 1 {
		bad("FEEDLINE_FETCH_CONCURRENCY (--fetch-concurrency) %d: want a whole number above 0", c.Fetch.Concurrency)
	}
	if c.Memory != 0 && c.Memory < minMemory {
		bad("FEEDLINE_MEMORY (--memory) %d bytes: want a size of at least %dMiB, such as 1GiB, or nothing for no limit", c.Memory, minMemory>>20)
	}
	// The sweep leaves files younger than staleUpload alone, as a write may
	// still be under way: a shorter retention would not be kept to.
	if c.UploadRetention < staleUpload {
		bad("FEEDLINE_UPLOAD_RETENTION (--upload-retention) %s: want a duration of at least %s, such as 24h", c.UploadRetention, staleUpload)
	}
	if c.CheckpointEvery < 0 || (c.CheckpointEvery > 0 && c.CheckpointEvery < time.Second) {
		bad("FEEDLINE_CHECKPOINT_EVERY (--checkpoint-every) %s: want a duration of at least 1s, such as 1m, or 0 for no checkpoints", c.CheckpointEvery)
	}
	if c.CompactEvery < 0 || (c.CompactEvery > 0 && c.CompactEvery < time.Second) {
		bad("FEEDLINE_COMPACT_EVERY (--compact-every) %s: want a duration of at least 1s, such as 1h, or 0 for no compaction", c.CompactEvery)
	}
	return errors.Join(errs...)
}

// parseSize reads a byte count: a whole number, or one with a unit (KiB,
// MiB, GiB, TiB; KB, MB, GB, TB are read as the same powers of two).
// minMemory is the least --memory accepted: the embedded NATS server, the
// search index and one batch in each stage need about this much.
const minMemory = 256 << 20

// heapLimit is the Go heap's soft limit for a process given memory bytes:
// the rest is left to the search index's mapped files and the runtime.
func heapLimit(memory int64) int64 { return memory / 4 * 3 }

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

// readSynonyms reads the global synonym list from a file.
func readSynonyms(path string) (schemas.SynonymList, error) {
	f, err := os.Open(path)
	if err != nil {
		return schemas.SynonymList{}, err
	}
	defer f.Close()
	return schemas.ReadSynonyms(f)
}

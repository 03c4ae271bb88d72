package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"feedline/api"
	"feedline/feed"
	"feedline/pipeline"
	"feedline/schemas"
)

func TestServeConfigFromFlagsEnvironmentAndDefaults(t *testing.T) {
	for _, st := range settings {
		t.Setenv(st.Env, "")
	}
	cfg, err := parseServeConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "./data" || cfg.HTTP != "127.0.0.1:8080" || cfg.NATS != "" || cfg.NATSReplicas != 1 ||
		cfg.ESURLs != nil || cfg.ESAlias != "products" || cfg.ClickHouseURL != "" || !slices.Equal(cfg.Stages, allStages) ||
		cfg.TokenMaxLifetime != api.DefaultTokenMaxLifetime || cfg.RedisPrefix != "feedline:" || cfg.UploadRetention != 24*time.Hour ||
		cfg.Currency != "KRW" {
		t.Errorf("defaults: %+v", cfg)
	}

	t.Setenv("FEEDLINE_NATS", "nats://nats-1:4222,nats://nats-2:4222")
	t.Setenv("FEEDLINE_NATS_REPLICAS", "3")
	t.Setenv("FEEDLINE_ES_URL", "http://es-1:9200, http://es-2:9200")
	t.Setenv("FEEDLINE_ES_PASSWORD", "s3cret")
	t.Setenv("FEEDLINE_CLICKHOUSE_URL", "clickhouse://feedline:pw@clickhouse:9000/feedline")
	t.Setenv("FEEDLINE_STAGES", "index,analytics")
	t.Setenv("FEEDLINE_ADMIN_KEY", "adm")
	cfg, err = parseServeConfig([]string{"--stages", "normalise", "--es-alias", "catalog"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS != "nats://nats-1:4222,nats://nats-2:4222" || cfg.NATSReplicas != 3 || cfg.ESPassword != "s3cret" || cfg.AdminKey != "adm" ||
		!slices.Equal(cfg.ESURLs, []string{"http://es-1:9200", "http://es-2:9200"}) || cfg.ClickHouseURL == "" {
		t.Errorf("from environment: %+v", cfg)
	}
	if cfg.Memory != 0 {
		t.Errorf("memory %d from the environment, want none set", cfg.Memory)
	}
	if cfg, err := parseServeConfig([]string{"--memory", "2GiB"}, io.Discard); err != nil || cfg.Memory != 2<<30 || heapLimit(cfg.Memory) != 1536<<20 {
		t.Errorf("--memory 2GiB: %d bytes, heap limit %d (%v)", cfg.Memory, heapLimit(cfg.Memory), err)
	}
	if cfg, err := parseServeConfig([]string{"--currency", "usd"}, io.Discard); err != nil || cfg.Currency != "usd" {
		t.Errorf("--currency usd: %q (%v)", cfg.Currency, err)
	}
	if !slices.Equal(cfg.Stages, []string{"normalise"}) || cfg.ESAlias != "catalog" {
		t.Errorf("flags must win over the environment: stages %v alias %q", cfg.Stages, cfg.ESAlias)
	}
}

func TestServeConfigRejectsBadValues(t *testing.T) {
	for _, st := range settings {
		t.Setenv(st.Env, "")
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--stages", "api,indexer"}},
		{[]string{"--nats-replicas", "0"}},
		{[]string{"--nats-replicas", "three"}},
		{[]string{"--token-max-lifetime", "10s"}},
		{[]string{"--token-max-lifetime", "forever"}},
		{[]string{"--no-such-flag"}},
		{[]string{"--redis-prefix", "feed{x}:"}},
		{[]string{"--memory", "100MiB"}},
		{[]string{"--memory", "lots"}},
		{[]string{"--upload-retention", "a day"}},
		{[]string{"--currency", "WON"}},
		{[]string{"--currency", "US"}},
		{[]string{"--currency", "XXX"}},
	} {
		if _, err := parseServeConfig(tc.args, io.Discard); err == nil {
			t.Errorf("%v accepted", tc.args)
		}
	}
}

func TestServeConfigNATSSignIn(t *testing.T) {
	for _, st := range settings {
		t.Setenv(st.Env, "")
	}
	t.Setenv("FEEDLINE_NATS_PASSWORD", "pw")
	cfg, err := parseServeConfig([]string{"--nats", "nats://nats-1:4222", "--nats-user", "ingest", "--nats-declare=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSAuth.User != "ingest" || cfg.NATSAuth.Password != "pw" || !cfg.NATSNoDeclare {
		t.Errorf("sign-in from flags and environment: %+v, no declare %v", cfg.NATSAuth, cfg.NATSNoDeclare)
	}
	if cfg, err := parseServeConfig(nil, io.Discard); err == nil || cfg.NATSNoDeclare {
		t.Errorf("a password without --nats: %v; declaring by default: %v", err, !cfg.NATSNoDeclare)
	}
	t.Setenv("FEEDLINE_NATS_PASSWORD", "")
	missing := filepath.Join(t.TempDir(), "missing.creds")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats-user", "ingest"}, "outside server"},
		{[]string{"--nats", "nats://nats-1:4222", "--nats-user", "ingest"}, "no password"},
		{[]string{"--nats", "nats://nats-1:4222", "--nats-cert", "client.pem"}, "without its key"},
		{[]string{"--nats", "nats://nats-1:4222", "--nats-creds", missing}, "missing.creds"},
		{[]string{"--nats", "nats://nats-1:4222", "--nats-declare", "maybe"}, "FEEDLINE_NATS_DECLARE"},
	} {
		_, err := parseServeConfig(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestEverySettingIsAFeedlineVariableOnce(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, st := range settings {
		if !strings.HasPrefix(st.Env, "FEEDLINE_") || seen[st.Env] || st.Help == "" {
			t.Errorf("setting %+v", st)
		}
		seen[st.Env] = true
	}
}

// TestReadmeDocumentsEverySetting keeps the README's configuration table
// in step with the settings the binary reads.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, st := range settings {
		if !strings.Contains(readme, "`"+st.Env+"`") {
			t.Errorf("README does not document %s", st.Env)
		}
		if st.Flag != "" && !strings.Contains(readme, "`--"+st.Flag+"`") {
			t.Errorf("README does not document --%s", st.Flag)
		}
	}
	for _, stage := range allStages {
		if !strings.Contains(readme, stage) {
			t.Errorf("README does not mention stage %s", stage)
		}
	}
}

// TestReadmeDocumentsEveryIssueCode keeps the README's table of issue codes
// in step with the codes the stages report.
func TestReadmeDocumentsEveryIssueCode(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range schemas.IssueCodes() {
		if row := fmt.Sprintf("| `%s` | %s | %s |", c.Code, c.Severity, c.Meaning); !strings.Contains(string(data), row) {
			t.Errorf("README lacks the row %s", row)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"20GiB": 20 << 30, "512 MiB": 512 << 20, "1000": 1000, "4kb": 4 << 10, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1GiB", "1.5GiB", "99999999999TiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// TestSettingsDefaultsAreValid: the settings' defaults alone make a
// configuration Validate accepts, and one built in code with only a data
// directory takes them.
func TestSettingsDefaultsAreValid(t *testing.T) {
	t.Parallel()
	d, err := defaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	cfg, err := serveConfig{DataDir: t.TempDir()}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "FEEDLINE_HTTP") {
		t.Errorf("the api stage without an HTTP address: %v", err)
	}
	cfg.HTTP = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Errorf("filled with the defaults: %v", err)
	}
	if !slices.Equal(cfg.Stages, allStages) || cfg.NATSReplicas != 1 || cfg.Feed.FeedCap != 800 || cfg.Feed.TimelineCap != 800 ||
		cfg.MaxDeletePercent != schemas.DefaultMaxDeletePercent || cfg.TokenMaxLifetime != api.DefaultTokenMaxLifetime ||
		cfg.MaxFileBytes != 4<<30 || cfg.MaxExpansion != 200 || cfg.Body.Idle != 30*time.Second || cfg.Fetch.Concurrency != 16 ||
		cfg.MaxInFlight != 0 || cfg.NATSListen != "" || cfg.Log == nil {
		t.Errorf("filled: %+v", cfg)
	}
	tuned, err := serveConfig{DataDir: "d", Feed: feed.Policy{CelebrityFollowers: 2}, MaxInFlight: 3}.withDefaults()
	if err != nil || tuned.Feed.CelebrityFollowers != 2 || tuned.MaxInFlight != 3 {
		t.Errorf("a set field must stay: %+v, %v", tuned, err)
	}
}

// TestValidateRejectsBadValuesAndCombinations: each configuration below
// cannot work, and the error names the setting to change.
func TestValidateRejectsBadValuesAndCombinations(t *testing.T) {
	t.Parallel()
	base, err := serveConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tune func(*serveConfig)
		want string
	}{
		{"no data directory", func(c *serveConfig) { c.DataDir = "" }, "FEEDLINE_DATA"},
		{"an unknown stage", func(c *serveConfig) { c.Stages = []string{"api", "indexer"} }, `unknown stage "indexer"`},
		{"no stage", func(c *serveConfig) { c.Stages = []string{} }, "names no stage"},
		{"a stage twice", func(c *serveConfig) { c.Stages = []string{"index", "index"} }, `stage "index" twice`},
		{"the api without HTTP", func(c *serveConfig) { c.HTTP = "" }, "FEEDLINE_HTTP"},
		{"zero replicas", func(c *serveConfig) { c.NATSReplicas = -1 }, "nats-replicas"},
		{"six replicas", func(c *serveConfig) { c.NATS, c.NATSReplicas = "nats://n:4222", 6 }, "nats-replicas"},
		{"replicas on the embedded server", func(c *serveConfig) { c.NATSReplicas = 3 }, "FEEDLINE_NATS_REPLICAS"},
		{"not declaring on the embedded server", func(c *serveConfig) { c.NATSNoDeclare = true }, "FEEDLINE_NATS_DECLARE"},
		{"a NATS user on the embedded server", func(c *serveConfig) { c.NATSAuth = pipeline.ClientAuth{User: "u", Password: "p"} }, "outside server"},
		{"a NATS user without a password", func(c *serveConfig) { c.NATS, c.NATSAuth = "nats://n:4222", pipeline.ClientAuth{User: "u"} }, "no password"},
		{"an Elasticsearch user without Elasticsearch", func(c *serveConfig) { c.ESUsername = "elastic" }, "FEEDLINE_ES_URL"},
		{"an alias without Elasticsearch", func(c *serveConfig) { c.ESAlias = "catalog" }, "FEEDLINE_ES_ALIAS"},
		{"a Redis prefix without Redis", func(c *serveConfig) { c.RedisPrefix = "staging:" }, "FEEDLINE_REDIS_URL"},
		{"a Redis prefix with braces", func(c *serveConfig) { c.RedisURL, c.RedisPrefix = "redis://r:6379/0", "a{b}:" }, "without { or }"},
		{"a Redis URL that is not one", func(c *serveConfig) { c.RedisURL = "http://r:6379" }, "FEEDLINE_REDIS_URL"},
		{"a short token key", func(c *serveConfig) { c.TokenKey = "short" }, "FEEDLINE_TOKEN_KEY"},
		{"a token lifetime of seconds", func(c *serveConfig) { c.TokenMaxLifetime = 10 * time.Second }, "FEEDLINE_TOKEN_MAX_LIFETIME"},
		{"a negative feed cap", func(c *serveConfig) { c.Feed.FeedCap = -1 }, "FEEDLINE_FEED_CAP"},
		{"a negative celebrity audience", func(c *serveConfig) { c.Feed.CelebrityFollowers = -5 }, "FEEDLINE_CELEBRITY_FOLLOWERS"},
		{"inactive after an hour", func(c *serveConfig) { c.Feed.InactiveAfter = time.Hour }, "FEEDLINE_INACTIVE_DAYS"},
		{"a price drop of 100%", func(c *serveConfig) { c.Feed.PriceDropPercent = 100 }, "FEEDLINE_PRICE_DROP_PERCENT"},
		{"deleting 101%", func(c *serveConfig) { c.MaxDeletePercent = 101 }, "FEEDLINE_MAX_DELETE_PERCENT"},
		{"an idle timeout of a millisecond", func(c *serveConfig) { c.Body.Idle = time.Millisecond }, "FEEDLINE_UPLOAD_IDLE_TIMEOUT"},
		{"a negative body rate", func(c *serveConfig) { c.Body.MinRate = -1 }, "FEEDLINE_UPLOAD_MIN_RATE"},
		{"files of a kilobyte", func(c *serveConfig) { c.MaxFileBytes = 1 << 10 }, "FEEDLINE_MAX_FILE_SIZE"},
		{"no expansion", func(c *serveConfig) { c.MaxExpansion = 1 }, "FEEDLINE_MAX_EXPANSION"},
		{"negative uploads in flight", func(c *serveConfig) { c.MaxInFlight = -1 }, "FEEDLINE_MAX_UPLOADS_IN_FLIGHT"},
		{"a fetch timeout of a millisecond", func(c *serveConfig) { c.Fetch.Timeout = time.Millisecond }, "FEEDLINE_FETCH_TIMEOUT"},
		{"negative fetch concurrency", func(c *serveConfig) { c.Fetch.Concurrency = -1 }, "FEEDLINE_FETCH_CONCURRENCY"},
		{"an upload retention of a minute", func(c *serveConfig) { c.UploadRetention = time.Minute }, "FEEDLINE_UPLOAD_RETENTION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Stages = slices.Clone(base.Stages)
			tc.tune(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	for name, tune := range map[string]func(*serveConfig){
		"as it is":                  func(*serveConfig) {},
		"a worker without HTTP":     func(c *serveConfig) { c.Stages, c.HTTP = []string{"index"}, "" },
		"a Redis prefix with Redis": func(c *serveConfig) { c.RedisURL, c.RedisPrefix = "redis://r:6379/0", "staging:" },
		"an alias with Elasticsearch": func(c *serveConfig) {
			c.ESURLs, c.ESAlias, c.ESUsername = []string{"http://es:9200"}, "catalog", "elastic"
		},
		"a NATS cluster at 3 replicas":  func(c *serveConfig) { c.NATS, c.NATSReplicas, c.NATSNoDeclare = "nats://n:4222", 3, true },
		"no limit on uploads in flight": func(c *serveConfig) { c.MaxInFlight = 0 },
	} {
		cfg := base
		tune(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestServeConfigRejectsExplicitZeros: a setting given as 0 where 0 makes
// no sense is refused, not read as its default.
func TestServeConfigRejectsExplicitZeros(t *testing.T) {
	for _, st := range settings {
		t.Setenv(st.Env, "")
	}
	for _, args := range [][]string{
		{"--feed-cap", "0"}, {"--max-delete-percent", "0"}, {"--max-expansion", "0"}, {"--upload-idle-timeout", "0s"},
		{"--fetch-concurrency", "0"}, {"--inactive-days", "0"}, {"--max-file-size", "0"}, {"--http", "", "--stages", "api"},
		{"--upload-retention", "0s"},
	} {
		if _, err := parseServeConfig(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

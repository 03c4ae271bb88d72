package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"feedline/api"
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
		cfg.TokenMaxLifetime != api.DefaultTokenMaxLifetime || cfg.RedisPrefix != "feedline:" {
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

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// alertRules is the rules file Prometheus loads beside the dashboard.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRulesNameOnlyServedMetrics parses every alert's expression with
// Prometheus's own PromQL parser and checks that each metric it selects is
// one a running feedline registers (a histogram by its _bucket, _sum or
// _count series), and that the alerts the deployment needs are there.
func TestAlertRulesNameOnlyServedMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "feedline-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	prom, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prom), "/etc/prometheus/feedline-rules.yml") {
		t.Error("prometheus.yml does not load feedline-rules.yml")
	}

	m, _ := processMetrics(t.TempDir())
	served := registeredMetrics(t, m.Registry)
	alerts := map[string]bool{}
	p := parser.NewParser(parser.Options{})
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Alert == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %+v: want an alert name, a severity and a summary", r)
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			for _, sel := range parser.ExtractSelectors(expr) {
				for _, m := range sel {
					if m.Name != "__name__" {
						continue
					}
					name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m.Value, "_bucket"), "_sum"), "_count")
					if !served[m.Value] && !served[name] {
						t.Errorf("%s selects %s, which feedline does not register", r.Alert, m.Value)
					}
				}
			}
		}
	}
	for _, want := range []string{"FeedlineStageLagGrowing", "FeedlineDeadLetters", "FeedlineStagePaused",
		"FeedlineFeedFreshnessOverObjective", "FeedlineSearchFreshnessOverObjective", "FeedlineDiskFilling"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// registeredMetrics is every metric name reg describes, including vectors
// that have no series yet.
func registeredMetrics(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	for _, want := range []string{"feedline_stage_paused", "feedline_freshness_seconds", "feedline_http_requests_total", "feedline_build_info", "feedline_data_filesystem_avail_bytes"} {
		if !names[want] {
			t.Fatalf("the registry does not describe %s (it describes %d metrics)", want, len(names))
		}
	}
	return names
}

package deploytest

import (
	"slices"
	"strings"
	"testing"
)

func TestComposeLoaderRejectsUnknownKeys(t *testing.T) {
	root, content := composeFile(t)
	bad := strings.Replace(string(content), "  redis:\n", "  redis:\n    enviroment: {}\n", 1)
	if bad == string(content) {
		t.Fatal("no redis service to break")
	}
	_, err := loadCompose(t.Context(), root, []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "enviroment") {
		t.Errorf("loading a misspelt key: %v", err)
	}
}

func TestPromQLReferences(t *testing.T) {
	metrics, labels := promqlRefs(`histogram_quantile(0.99, sum by (le, stage) (rate(feedline_stage_batch_seconds_bucket{stage=~"$stage", outcome!="x"}[$__rate_interval]))) / on(job) group_left up offset 5m > 1e3`)
	if !slices.Equal(metrics, []string{"feedline_stage_batch_seconds_bucket", "up"}) {
		t.Errorf("metrics %v", metrics)
	}
	if !slices.Equal(labels, []string{"job", "le", "outcome", "stage"}) {
		t.Errorf("labels %v", labels)
	}
}

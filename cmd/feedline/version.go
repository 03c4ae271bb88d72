package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"feedline/api"
	"feedline/pipeline"
)

// buildInfo is what the binary knows of its own build.
type buildInfo struct {
	Version   string // the module version, "(devel)" for a local build
	Revision  string // the VCS revision, "unknown" when not stamped
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", Revision: "unknown", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	if info.GoVersion != "" {
		b.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// buildInfoCollector is feedline_build_info: always 1, its labels say what runs.
func buildInfoCollector() prometheus.Collector {
	b := readBuildInfo()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "feedline_build_info", Help: "The running binary's version, VCS revision and Go version (always 1).",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	return g
}

// processMetrics is the registry every feedline process serves at
// /metrics: the stages' series, the API's requests, the build and the data
// directory's disk.
func processMetrics(dataDir string) (*pipeline.Metrics, *api.HTTPMetrics) {
	m := pipeline.NewMetrics()
	m.Registry.MustRegister(buildInfoCollector(), newDataDiskCollector(dataDir))
	return m, api.NewHTTPMetrics(m.Registry)
}

// versionCmd prints the build's version, revision and Go version.
func versionCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments, got %q", args)
	}
	b := readBuildInfo()
	rev := b.Revision
	if b.Modified {
		rev += " (modified)"
	}
	fmt.Fprintf(stdout, "feedline %s\nrevision %s\ngo %s\n", b.Version, rev, b.GoVersion)
	return nil
}

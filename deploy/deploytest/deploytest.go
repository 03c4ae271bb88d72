// Package deploytest checks the deployment (compose.yaml, the Dockerfile and
// the files under deploy/ they mount) against the code rather than starting
// it: the machines that run the tests have no container engine. The file is
// loaded with compose-go, the loader Docker Compose itself uses, and every
// feedline service's command and environment go through the binary's own
// configuration parser, which the binary's tests hand in as a Binary.
package deploytest

import (
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"feedline/pipeline"
)

// Binary is what the checks need of the feedline binary.
type Binary struct {
	Settings []string // every FEEDLINE_* variable it reads
	Stages   []string // every stage it runs
	// Configure is the configuration a container with env and args runs
	// with, as the binary parses it (reading env through t.Setenv).
	Configure func(t *testing.T, env map[string]string, args []string) (Config, error)
	// Metrics is the registry a feedline process serves; nil is the
	// pipeline's series alone.
	Metrics func() *prometheus.Registry
}

// Config is the part of a feedline container's configuration the
// deployment relies on.
type Config struct {
	Stages        []string
	HTTP          string
	NATS          string // the outside NATS URLs, comma-separated
	NATSReplicas  int
	NATSUser      string
	NATSPassword  string
	NATSInbox     string
	NATSNoDeclare bool
	ESURLs        []string
	ESUsername    string
	ESPassword    string
	ClickHouseURL string
}

// repoRoot is the directory of go.mod above the working directory: it holds
// compose.yaml and the Dockerfile, wherever the tests run.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Ports the backend images listen on; feedline's settings must point at them.
const (
	natsClientPort       = 4222
	elasticsearchPort    = 9200
	clickhouseNativePort = 9000
	redisPort            = 6379
)

// roleOf names the part an image plays in the deployment ("" for images it
// does not know, such as feedline's own).
func roleOf(image string) string {
	repo := image
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	switch repo {
	case "nats":
		return "nats"
	case "natsio/prometheus-nats-exporter":
		return "nats-exporter"
	case "docker.elastic.co/elasticsearch/elasticsearch":
		return "elasticsearch"
	case "clickhouse/clickhouse-server":
		return "clickhouse"
	case "redis":
		return "redis"
	case "prom/prometheus":
		return "prometheus"
	case "grafana/grafana", "grafana/grafana-oss":
		return "grafana"
	}
	return ""
}

// Deployment is a loaded compose project plus how each feedline container
// would configure itself.
type Deployment struct {
	p        *types.Project
	root     string
	binary   Binary
	image    dockerImage
	roles    map[string][]string  // role → service names, sorted
	feedline map[string]Container // services built from this repository's Dockerfile
	setenv   func(key, value string)
	tempDir  func() string
}

// Container is one feedline service as its containers start it.
type Container struct {
	Env  map[string]string // the image's ENV, then the service's environment
	Args []string
	// OneShot runs once and exits (feedline nats declare) rather than serving.
	OneShot bool
	cfg     Config
	err     error // what the binary said about Args and Env
}

// Config is the configuration the container runs with, or what the binary
// said about its arguments and environment.
func (c Container) Config() (Config, error) { return c.cfg, c.err }

// Replicas is how many containers of a service compose starts.
func (d *Deployment) Replicas(service string) int {
	if s, ok := d.p.Services[service]; ok && s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	return 1
}

// Roles are the services playing role ("nats", "prometheus", …), sorted.
func (d *Deployment) Roles(role string) []string { return d.roles[role] }

// Feedline are the services built from this repository's Dockerfile, by name.
func (d *Deployment) Feedline() map[string]Container { return d.feedline }

// dockerImage is what the Dockerfile's final stage sets.
type dockerImage struct {
	env    map[string]string
	expose []string
	cmd    []string
}

// CheckDeployment runs every check on the deployment as it is, one subtest each.
func CheckDeployment(t *testing.T, b Binary) {
	d := Load(t, b, nil)
	if d.p.Name != "feedline" {
		t.Errorf("project name %q, want feedline", d.p.Name)
	}
	for _, c := range d.checks() {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); err != nil {
				t.Error(err)
			}
		})
	}
}

// CheckCatchesMistakes breaks a fresh copy of the deployment in one place at
// a time and expects the matching check to say so.
func CheckCatchesMistakes(t *testing.T, b Binary) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, p *types.Project)
		check  func(d *Deployment) error
		want   string
	}{
		{"a stage without a service", func(t *testing.T, p *types.Project) {
			delete(p.Services, "index")
		}, (*Deployment).checkStages, `"index"`},
		{"a stage the code does not know", func(t *testing.T, p *types.Project) {
			setServiceCommand(p, "index", "serve", "--stages=indexer")
		}, (*Deployment).checkSettings, "indexer"},
		{"a misspelt setting", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "ingest", "FEEDLINE_ES_URLS", "http://elasticsearch:9200")
		}, (*Deployment).checkSettings, "FEEDLINE_ES_URLS"},
		{"a NATS node left out", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "api", "FEEDLINE_NATS", "nats://nats-1:4222,nats://nats-2:4222")
		}, (*Deployment).checkBackendURLs, "nats-3"},
		{"NATS on the wrong port", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "normalise", "FEEDLINE_NATS", "nats://nats-1:4223,nats://nats-2:4222,nats://nats-3:4222")
		}, (*Deployment).checkBackendURLs, "4223"},
		{"streams not replicated", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "analytics", "FEEDLINE_NATS_REPLICAS", "1")
		}, (*Deployment).checkBackendURLs, "replicas 1"},
		{"Elasticsearch under a name no service has", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "index", "FEEDLINE_ES_URL", "http://search:9200")
		}, (*Deployment).checkBackendURLs, `"search"`},
		{"ClickHouse password differs from the server's", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "analytics", "FEEDLINE_CLICKHOUSE_URL", "clickhouse://feedline:wrong@clickhouse:9000/feedline")
		}, (*Deployment).checkBackendURLs, "CLICKHOUSE_PASSWORD"},
		{"HTTP on loopback", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "normalise", "FEEDLINE_HTTP", "127.0.0.1:8080")
		}, (*Deployment).checkHTTP, "127.0.0.1"},
		{"healthcheck on another port", func(t *testing.T, p *types.Project) {
			s := p.Services["ingest"]
			s.HealthCheck = &types.HealthCheckConfig{Test: []string{"CMD", "/usr/local/bin/probe", "http://127.0.0.1:9090/readyz"}}
			p.Services["ingest"] = s
		}, (*Deployment).checkHTTP, "9090"},
		{"a healthy condition on a service without healthcheck", func(t *testing.T, p *types.Project) {
			s := p.Services["redis"]
			s.HealthCheck = nil
			p.Services["redis"] = s
		}, (*Deployment).checkDependsOn, "redis"},
		{"a fixed host port on a scaled service", func(t *testing.T, p *types.Project) {
			s := p.Services["index"]
			s.Ports = []types.ServicePortConfig{{Target: 8080, Published: "8081"}}
			p.Services["index"] = s
		}, (*Deployment).checkReplicas, "index"},
		{"a scaling stage with one replica", func(t *testing.T, p *types.Project) {
			s := p.Services["normalise"]
			s.Deploy = nil
			p.Services["normalise"] = s
		}, (*Deployment).checkReplicas, "normalise"},
		{"a mounted file that does not exist", func(t *testing.T, p *types.Project) {
			repoint(p, "prometheus", "/etc/prometheus/prometheus.yml", filepath.Join(p.WorkingDir, "deploy/prometheus/nope.yml"))
		}, (*Deployment).checkMounts, "nope.yml"},
		{"a NATS node missing", func(t *testing.T, p *types.Project) {
			delete(p.Services, "nats-3")
		}, (*Deployment).checkNATS, "nats-3"},
		{"a NATS node without a server name", func(t *testing.T, p *types.Project) {
			setServiceCommand(p, "nats-2", "--config", "/etc/nats/nats.conf")
		}, (*Deployment).checkNATS, "nats-2"},
		{"two routes", func(t *testing.T, p *types.Project) {
			conf := editedCopy(t, filepath.Join(p.WorkingDir, "deploy/nats/nats.conf"), "nats-route://nats-3:6222", "")
			for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
				repoint(p, n, "/etc/nats/nats.conf", conf)
			}
		}, (*Deployment).checkNATS, "routes"},
		{"messages larger than the servers accept", func(t *testing.T, p *types.Project) {
			conf := editedCopy(t, filepath.Join(p.WorkingDir, "deploy/nats/nats.conf"), "max_payload: 8MB", "max_payload: 1MB")
			for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
				repoint(p, n, "/etc/nats/nats.conf", conf)
			}
		}, (*Deployment).checkNATS, "max_payload"},
		{"two services as one NATS user", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "index", "FEEDLINE_NATS_USER", "normalise")
			setServiceEnv(p, "index", "FEEDLINE_NATS_PASSWORD", "normalise-dev")
		}, (*Deployment).checkNATS, "share NATS user normalise"},
		{"a NATS password the servers do not have", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "ingest", "FEEDLINE_NATS_PASSWORD", "wrong")
		}, (*Deployment).checkNATS, "FEEDLINE_NATS_PASSWORD"},
		{"a service that declares streams", func(t *testing.T, p *types.Project) {
			setServiceEnv(p, "fanout", "FEEDLINE_NATS_DECLARE", "true")
		}, (*Deployment).checkNATS, "service fanout declares"},
		{"a NATS user who may read every reply", func(t *testing.T, p *types.Project) {
			users := editedCopy(t, filepath.Join(p.WorkingDir, "deploy/nats/users.conf"), `["_INBOX_ingest.>"]`, `["_INBOX.>"]`)
			for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
				repoint(p, n, "/etc/nats/users.conf", users)
			}
		}, (*Deployment).checkNATS, "NATS user ingest may subscribe"},
		{"a NATS node without the users file", func(t *testing.T, p *types.Project) {
			s := p.Services["nats-2"]
			s.Volumes = slices.DeleteFunc(slices.Clone(s.Volumes), func(v types.ServiceVolumeConfig) bool { return v.Target == "/etc/nats/users.conf" })
			p.Services["nats-2"] = s
		}, (*Deployment).checkNATS, "users.conf"},
		{"a stage that starts before the streams are declared", func(t *testing.T, p *types.Project) {
			s := p.Services["index"]
			delete(s.DependsOn, "nats-setup")
			p.Services["index"] = s
		}, (*Deployment).checkDependsOn, "service index does not declare"},
		{"a stage Prometheus does not scrape", func(t *testing.T, p *types.Project) {
			conf := editedCopy(t, filepath.Join(p.WorkingDir, "deploy/prometheus/prometheus.yml"), "normalise, index,", "normalise,")
			repoint(p, "prometheus", "/etc/prometheus/prometheus.yml", conf)
		}, (*Deployment).checkPrometheus, "index"},
		{"a dashboard metric the code does not register", func(t *testing.T, p *types.Project) {
			dir := editDashboards(t, p, "feedline_stage_consumer_pending{", "feedline_stage_consumer_lag{")
			repoint(p, "grafana", "/etc/grafana/dashboards", dir)
		}, (*Deployment).checkGrafana, "feedline_stage_consumer_lag"},
		{"a dashboard label no series has", func(t *testing.T, p *types.Project) {
			dir := editDashboards(t, p, "sum by (stage, outcome) (rate(feedline_stage_items_total", "sum by (stage, partner) (rate(feedline_stage_items_total")
			repoint(p, "grafana", "/etc/grafana/dashboards", dir)
		}, (*Deployment).checkGrafana, "partner"},
		{"a registered metric on no panel", func(t *testing.T, p *types.Project) {
			dir := editDashboards(t, p, "feedline_stage_messages_out_total", "feedline_stage_messages_in_total")
			repoint(p, "grafana", "/etc/grafana/dashboards", dir)
		}, (*Deployment).checkGrafana, "feedline_stage_messages_out_total"},
		{"an analyst who can write", func(t *testing.T, p *types.Project) {
			users := editedCopy(t, filepath.Join(p.WorkingDir, "deploy/clickhouse/users.d/analyst.xml"), "<profile>readonly</profile>", "<profile>default</profile>")
			repoint(p, "clickhouse", "/etc/clickhouse-server/users.d/analyst.xml", users)
		}, (*Deployment).checkClickHouseUsers, "analyst"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Load(t, b, func(p *types.Project) { tc.mutate(t, p) })
			err := tc.check(d)
			if err == nil {
				t.Fatalf("check passed; want an error mentioning %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %s:\n%v", tc.want, err)
			}
		})
	}
}

// checks are every assertion on the deployment, by name.
func (d *Deployment) checks() []struct {
	name string
	run  func() error
} {
	return []struct {
		name string
		run  func() error
	}{
		{"ServicesResolve", d.checkServices},
		{"Backends", d.checkBackends},
		{"Stages", d.checkStages},
		{"Settings", d.checkSettings},
		{"BackendURLs", d.checkBackendURLs},
		{"HTTP", d.checkHTTP},
		{"DependsOn", d.checkDependsOn},
		{"Replicas", d.checkReplicas},
		{"Mounts", d.checkMounts},
		{"NATS", d.checkNATS},
		{"Prometheus", d.checkPrometheus},
		{"Grafana", d.checkGrafana},
		{"ClickHouseUsers", d.checkClickHouseUsers},
	}
}

func composeFile(t *testing.T) (root string, content []byte) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	content, err = os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return root, content
}

// loadCompose loads and validates the file as `docker compose` would, with
// an empty outside environment so only the file's own defaults apply.
func loadCompose(ctx context.Context, root string, content []byte) (*types.Project, error) {
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml"), Content: content}},
		Environment: types.Mapping{},
	})
}

// Load reads the deployment, changed by mutate when not nil, and how b
// configures each feedline container of it.
func Load(t *testing.T, b Binary, mutate func(*types.Project)) *Deployment {
	t.Helper()
	root, content := composeFile(t)
	p, err := loadCompose(t.Context(), root, content)
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	if mutate != nil {
		mutate(p)
	}
	image, err := readDockerfile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Deployment{p: p, root: root, binary: b, image: image, roles: map[string][]string{}, feedline: map[string]Container{}, setenv: t.Setenv, tempDir: t.TempDir}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if role := roleOf(s.Image); role != "" {
			d.roles[role] = append(d.roles[role], name)
		}
		if s.Build == nil || filepath.Clean(s.Build.Context) != root {
			continue
		}
		env := maps.Clone(image.env)
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		args := []string(s.Command)
		if len(args) == 0 {
			args = image.cmd
		}
		pr := Container{Env: env, Args: args, OneShot: slices.Equal(args, []string{"nats", "declare"})}
		pr.cfg, pr.err = b.Configure(t, env, args)
		d.feedline[name] = pr
	}
	return d
}

// readDockerfile reads ENV, EXPOSE and CMD of the final stage.
func readDockerfile(path string) (dockerImage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return dockerImage{}, err
	}
	var img dockerImage
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			img = dockerImage{env: map[string]string{}}
		case "ENV":
			for _, kv := range fields[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return img, fmt.Errorf("the Dockerfile: %q: write ENV as KEY=VALUE", line)
				}
				img.env[k] = v
			}
		case "EXPOSE":
			for _, p := range fields[1:] {
				img.expose = append(img.expose, strings.TrimSuffix(p, "/tcp"))
			}
		case "CMD":
			if err := json.Unmarshal([]byte(strings.TrimSpace(line[len(fields[0]):])), &img.cmd); err != nil {
				return img, fmt.Errorf("the Dockerfile: CMD in exec form: %w", err)
			}
		}
	}
	return img, nil
}

func (d *Deployment) checkServices() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(d.p.Services)) {
		s := d.p.Services[name]
		switch {
		case s.Build != nil:
			dockerfile := filepath.Join(s.Build.Context, cmp.Or(s.Build.Dockerfile, "Dockerfile"))
			if _, err := os.Stat(dockerfile); err != nil {
				errs = append(errs, fmt.Errorf("service %s builds from %s: %w", name, dockerfile, err))
			}
		case s.Image == "":
			errs = append(errs, fmt.Errorf("service %s has neither image nor build", name))
		}
	}
	if len(d.feedline) == 0 {
		errs = append(errs, errors.New("no service is built from this repository's Dockerfile"))
	}
	return errors.Join(errs...)
}

func (d *Deployment) checkBackends() error {
	var errs []error
	for _, want := range []struct {
		role  string
		count int
	}{{"nats", 3}, {"nats-exporter", 1}, {"elasticsearch", 1}, {"clickhouse", 1}, {"redis", 1}, {"prometheus", 1}, {"grafana", 1}} {
		if got := len(d.roles[want.role]); got != want.count {
			errs = append(errs, fmt.Errorf("%d %s services %v, want %d", got, want.role, d.roles[want.role], want.count))
		}
	}
	return errors.Join(errs...)
}

// checkStages: every stage the code knows runs alone in some service, so
// each can be scaled on its own.
func (d *Deployment) checkStages() error {
	var errs []error
	for _, stage := range d.binary.Stages {
		var runners []string
		for name, pr := range d.feedline {
			if pr.err == nil && slices.Equal(pr.cfg.Stages, []string{stage}) {
				runners = append(runners, name)
			}
		}
		if len(runners) == 0 {
			errs = append(errs, fmt.Errorf("no service runs stage %q alone (command serve --stages=%s)", stage, stage))
		}
	}
	return errors.Join(errs...)
}

// checkSettings: compose and the image configure feedline only by names the
// code reads, with values it accepts.
func (d *Deployment) checkSettings() error {
	known := map[string]bool{}
	for _, env := range d.binary.Settings {
		known[env] = true
	}
	var errs []error
	for k := range d.image.env {
		if strings.HasPrefix(k, "FEEDLINE_") && !known[k] {
			errs = append(errs, fmt.Errorf("the Dockerfile sets %s, which is not a setting", k))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.p.Services)) {
		for k := range d.p.Services[name].Environment {
			if strings.HasPrefix(k, "FEEDLINE_") && !known[k] {
				errs = append(errs, fmt.Errorf("service %s sets %s, which is not a setting", name, k))
			}
		}
		if pr, ok := d.feedline[name]; ok && pr.err != nil {
			errs = append(errs, fmt.Errorf("service %s: feedline %v rejects its configuration: %w", name, pr.Args, pr.err))
		}
	}
	return errors.Join(errs...)
}

// checkBackendURLs: every feedline service reaches every backend by a
// service name and port that exist, with the credentials the backend has.
func (d *Deployment) checkBackendURLs() error {
	var errs []error
	known := map[string]bool{}
	for _, env := range d.binary.Settings {
		known[env] = true
	}
	nodes := d.roles["nats"]
	for _, name := range slices.Sorted(maps.Keys(d.feedline)) {
		pr := d.feedline[name]
		if pr.err != nil {
			continue // checkSettings reports it
		}
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{name}, a...)...))
		}

		var listed []string
		for _, raw := range strings.Split(pr.cfg.NATS, ",") {
			if strings.TrimSpace(raw) == "" {
				continue
			}
			host, err := d.pointsAt(raw, "nats", natsClientPort, "nats")
			if err != nil {
				fail("FEEDLINE_NATS: %v", err)
			}
			listed = append(listed, host)
		}
		for _, n := range nodes {
			if !slices.Contains(listed, n) {
				fail("FEEDLINE_NATS %q does not list node %s", pr.cfg.NATS, n)
			}
		}
		if pr.cfg.NATSReplicas != len(nodes) || len(nodes) != 3 {
			fail("nats replicas %d, want one per node (%d nodes, 3 wanted)", pr.cfg.NATSReplicas, len(nodes))
		}

		if len(pr.cfg.ESURLs) == 0 {
			fail("FEEDLINE_ES_URL is empty: the embedded index is one process's files")
		}
		for _, raw := range pr.cfg.ESURLs {
			host, err := d.pointsAt(raw, "elasticsearch", elasticsearchPort, "http", "https")
			if err != nil {
				fail("FEEDLINE_ES_URL: %v", err)
				continue
			}
			if pw, ok := d.envOf(host, "ELASTIC_PASSWORD"); ok && (pr.cfg.ESUsername != "elastic" || pr.cfg.ESPassword != pw) {
				fail("Elasticsearch credentials %q/%q, want elastic and %s's ELASTIC_PASSWORD", pr.cfg.ESUsername, pr.cfg.ESPassword, host)
			}
		}

		if pr.cfg.ClickHouseURL == "" {
			fail("FEEDLINE_CLICKHOUSE_URL is empty: analytics would go to local Parquet files")
		} else if host, err := d.pointsAt(pr.cfg.ClickHouseURL, "clickhouse", clickhouseNativePort, "clickhouse"); err != nil {
			fail("FEEDLINE_CLICKHOUSE_URL: %v", err)
		} else {
			u, _ := url.Parse(pr.cfg.ClickHouseURL)
			pw, _ := u.User.Password()
			for _, want := range []struct{ env, got string }{
				{"CLICKHOUSE_USER", u.User.Username()},
				{"CLICKHOUSE_PASSWORD", pw},
				{"CLICKHOUSE_DB", strings.TrimPrefix(u.Path, "/")},
			} {
				if v, _ := d.envOf(host, want.env); v != want.got {
					fail("FEEDLINE_CLICKHOUSE_URL has %q where %s's %s is %q", want.got, host, want.env, v)
				}
			}
		}

		// Redis is checked once the code reads it: the fanout stage brings the setting.
		if known["FEEDLINE_REDIS_URL"] {
			if _, err := d.pointsAt(pr.Env["FEEDLINE_REDIS_URL"], "redis", redisPort, "redis"); err != nil {
				fail("FEEDLINE_REDIS_URL: %v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// pointsAt checks that raw is a URL of one of schemes naming a service of
// role on port, and returns that service.
func (d *Deployment) pointsAt(raw, role string, port int, schemes ...string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if !slices.Contains(schemes, u.Scheme) {
		return "", fmt.Errorf("%q: scheme %q, want %v", raw, u.Scheme, schemes)
	}
	host := u.Hostname()
	if !slices.Contains(d.roles[role], host) {
		return host, fmt.Errorf("%q: host %q is not a %s service %v", raw, host, role, d.roles[role])
	}
	if u.Port() != strconv.Itoa(port) {
		return host, fmt.Errorf("%q: port %q, want %d", raw, u.Port(), port)
	}
	return host, nil
}

func (d *Deployment) envOf(service, key string) (string, bool) {
	v, ok := d.p.Services[service].Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// listenPort is where a feedline service listens, or an error when other
// containers could not reach it.
func listenPort(pr Container) (string, error) {
	host, port, err := net.SplitHostPort(pr.cfg.HTTP)
	if err != nil {
		return "", fmt.Errorf("FEEDLINE_HTTP %q: %w", pr.cfg.HTTP, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		return port, fmt.Errorf("FEEDLINE_HTTP %q listens on %s only: Prometheus and the healthcheck cannot reach it", pr.cfg.HTTP, host)
	}
	return port, nil
}

// checkHTTP: the port a feedline service listens on is the one its
// healthcheck asks, the image exposes and its published ports lead to.
func (d *Deployment) checkHTTP() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(d.feedline)) {
		pr := d.feedline[name]
		if pr.err != nil || pr.OneShot {
			continue
		}
		port, err := listenPort(pr)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		if !slices.Contains(d.image.expose, port) {
			errs = append(errs, fmt.Errorf("service %s listens on %s; the Dockerfile exposes %v", name, port, d.image.expose))
		}
		s := d.p.Services[name]
		probe := healthcheckURL(s.HealthCheck)
		switch {
		case probe == nil:
			errs = append(errs, fmt.Errorf("service %s has no healthcheck asking an http:// URL", name))
		case probe.Port() != port || probe.Path != "/readyz":
			errs = append(errs, fmt.Errorf("service %s: healthcheck asks %s, want /readyz on port %s", name, probe, port))
		}
		for _, pc := range s.Ports {
			if strconv.Itoa(int(pc.Target)) != port {
				errs = append(errs, fmt.Errorf("service %s publishes container port %d; it listens on %s", name, pc.Target, port))
			}
		}
	}
	return errors.Join(errs...)
}

func healthcheckURL(hc *types.HealthCheckConfig) *url.URL {
	if hc == nil || hc.Disable {
		return nil
	}
	for _, arg := range hc.Test {
		for _, f := range strings.Fields(arg) {
			f = strings.Trim(f, `'"`)
			if strings.HasPrefix(f, "http://") {
				if u, err := url.Parse(f); err == nil {
					return u
				}
			}
		}
	}
	return nil
}

// checkDependsOn: a service waits for healthy backends only if they have a
// healthcheck, and every feedline service waits for the whole NATS cluster.
func (d *Deployment) checkDependsOn() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(d.p.Services)) {
		s := d.p.Services[name]
		for dep, cond := range s.DependsOn {
			target, ok := d.p.Services[dep]
			if !ok {
				errs = append(errs, fmt.Errorf("service %s depends on %s, which does not exist", name, dep))
				continue
			}
			if cond.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
				errs = append(errs, fmt.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep))
			}
		}
		pr, ok := d.feedline[name]
		if !ok {
			continue
		}
		for _, n := range d.roles["nats"] {
			if s.DependsOn[n].Condition != types.ServiceConditionHealthy {
				errs = append(errs, fmt.Errorf("service %s does not wait for NATS node %s to be healthy", name, n))
			}
		}
		// A service that may not declare streams starts once they are.
		if pr.err == nil && pr.cfg.NATSNoDeclare && !pr.OneShot {
			declared := false
			for setup, spr := range d.feedline {
				declared = declared || (spr.OneShot && s.DependsOn[setup].Condition == types.ServiceConditionCompletedSuccessfully)
			}
			if !declared {
				errs = append(errs, fmt.Errorf("service %s does not declare streams (FEEDLINE_NATS_DECLARE=false) and does not wait for a feedline nats declare service to complete", name))
			}
		}
	}
	return errors.Join(errs...)
}

// checkReplicas: the stages that scale run more than one copy, and nothing
// with more than one copy claims a fixed host port.
func (d *Deployment) checkReplicas() error {
	var errs []error
	replicas := func(s types.ServiceConfig) int {
		if s.Deploy == nil || s.Deploy.Replicas == nil {
			return 1
		}
		return *s.Deploy.Replicas
	}
	for _, stage := range []string{"normalise", "index"} {
		scaled := false
		for name, pr := range d.feedline {
			if pr.err == nil && slices.Contains(pr.cfg.Stages, stage) && replicas(d.p.Services[name]) > 1 {
				scaled = true
			}
		}
		if !scaled {
			errs = append(errs, fmt.Errorf("stage %s: no service runs it with deploy.replicas > 1", stage))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.p.Services)) {
		s := d.p.Services[name]
		if n := replicas(s); n > 1 {
			for _, pc := range s.Ports {
				if pc.Published != "" && !strings.Contains(pc.Published, "-") {
					errs = append(errs, fmt.Errorf("service %s: %d replicas cannot all publish host port %s", name, n, pc.Published))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkMounts: every file a service mounts from the repository exists.
func (d *Deployment) checkMounts() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(d.p.Services)) {
		for _, v := range d.p.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if rel, err := filepath.Rel(d.root, v.Source); err != nil || strings.HasPrefix(rel, "..") {
				errs = append(errs, fmt.Errorf("service %s mounts %s from outside the repository", name, v.Source))
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				errs = append(errs, fmt.Errorf("service %s mounts %s: %w", name, v.Source, err))
			}
		}
	}
	return errors.Join(errs...)
}

// hostPath is the repository file a service sees at target, through the
// bind mount closest to it.
func hostPath(s types.ServiceConfig, target string) (string, bool) {
	best, found := "", ""
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if target == v.Target || strings.HasPrefix(target, v.Target+"/") {
			if len(v.Target) > len(best) {
				best, found = v.Target, filepath.Join(v.Source, strings.TrimPrefix(target, v.Target))
			}
		}
	}
	return found, best != ""
}

// argValue finds --name VALUE or --name=VALUE among args, for any of names.
func argValue(args []string, names ...string) string {
	for i, a := range args {
		for _, n := range names {
			if a == n && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v
			}
		}
	}
	return ""
}

// checkNATS: the three nodes form one JetStream cluster whose routes name
// every node, and the servers accept what the pipeline publishes.
func (d *Deployment) checkNATS() error {
	var errs []error
	nodes := d.roles["nats"]
	names := map[string]string{}       // server name → node
	serverNames := map[string]string{} // node → server name
	configs := map[string][]string{}   // host file → nodes reading it
	for _, n := range nodes {
		s := d.p.Services[n]
		serverName := argValue(s.Command, "--name", "-n", "--server_name")
		if serverName == "" {
			errs = append(errs, fmt.Errorf("NATS node %s has no --name: JetStream clustering needs a unique server name", n))
		} else if other, dup := names[serverName]; dup {
			errs = append(errs, fmt.Errorf("NATS nodes %s and %s are both named %s", other, n, serverName))
		}
		names[serverName] = n
		serverNames[n] = serverName
		conf := argValue(s.Command, "--config", "-c")
		path, ok := hostPath(s, conf)
		if conf == "" || !ok {
			errs = append(errs, fmt.Errorf("NATS node %s: --config %q is not mounted from the repository", n, conf))
			continue
		}
		configs[path] = append(configs[path], n)
	}
	for _, path := range slices.Sorted(maps.Keys(configs)) {
		opts, err := d.NATSOptions(configs[path][0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, d.checkNATSConfig(path, opts, configs[path]))
		errs = append(errs, d.checkNATSUsers(path, opts))
		// nats-server's own validation, as each node starts it.
		for _, n := range configs[path] {
			opts, err := d.NATSOptions(n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			opts.ServerName = serverNames[n]
			s, err := server.NewServer(opts)
			if err != nil {
				errs = append(errs, fmt.Errorf("NATS node %s would not start: %w", n, err))
				continue
			}
			s.Shutdown()
		}
	}
	return errors.Join(errs...)
}

// NATSOptions reads node's NATS configuration as the node reads it: with
// the files its mounts place beside it (an include is relative to the file
// that includes it) and its environment (where the users' passwords come from).
func (d *Deployment) NATSOptions(node string) (*server.Options, error) {
	s := d.p.Services[node]
	for k, v := range s.Environment {
		if v != nil {
			d.setenv(k, *v)
		}
	}
	conf := argValue(s.Command, "--config", "-c")
	dir := d.tempDir()
	for _, v := range s.Volumes {
		rel, err := filepath.Rel(filepath.Dir(conf), v.Target)
		if v.Type != types.VolumeTypeBind || err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		b, err := os.ReadFile(v.Source)
		if err != nil {
			return nil, fmt.Errorf("node %s mounts %s at %s: %w", node, v.Source, v.Target, err)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return nil, err
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, filepath.Base(conf)))
	if err != nil {
		return nil, fmt.Errorf("%s, as node %s reads it: %w", conf, node, err)
	}
	return opts, nil
}

// natsUser is a service's NATS user in opts, or an error saying why the
// service would not get in.
func natsUser(opts *server.Options, pr Container) (*server.User, error) {
	if pr.cfg.NATSUser == "" {
		return nil, errors.New("signs in to NATS without a user (FEEDLINE_NATS_USER)")
	}
	for _, u := range opts.Users {
		if u.Username == pr.cfg.NATSUser {
			if u.Password != pr.cfg.NATSPassword {
				return nil, fmt.Errorf("NATS user %s: FEEDLINE_NATS_PASSWORD is not the password the servers give it", u.Username)
			}
			return u, nil
		}
	}
	return nil, fmt.Errorf("NATS user %q is not a user of the servers", pr.cfg.NATSUser)
}

// checkNATSUsers: the servers require sign-in, every feedline service signs
// in as a user of its own that exists with its password, subscribes to its
// own replies only, and only the one-off declaring service may manage streams.
func (d *Deployment) checkNATSUsers(path string, opts *server.Options) error {
	var errs []error
	fail := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{filepath.Base(path)}, a...)...))
	}
	if len(opts.Users) == 0 && len(opts.Nkeys) == 0 && opts.Authorization == "" {
		fail("no authorization: any client may use every stream")
	}
	if opts.NoAuthUser != "" {
		fail("no_auth_user %s lets clients in without credentials", opts.NoAuthUser)
	}
	owner := map[string]string{} // NATS user → service
	for _, name := range slices.Sorted(maps.Keys(d.feedline)) {
		pr := d.feedline[name]
		if pr.err != nil {
			continue
		}
		u, err := natsUser(opts, pr)
		if err != nil {
			fail("service %s %v", name, err)
			continue
		}
		if other, dup := owner[u.Username]; dup {
			fail("services %s and %s share NATS user %s: each service needs its own rights", other, name, u.Username)
		}
		owner[u.Username] = name
		if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
			fail("NATS user %s of service %s has no publish and subscribe permissions: it may do anything", u.Username, name)
			continue
		}
		inbox := cmp.Or(pr.cfg.NATSInbox, "_INBOX")
		if sub := u.Permissions.Subscribe.Allow; !slices.Equal(sub, []string{inbox + ".>"}) || inbox == "_INBOX" {
			fail("NATS user %s may subscribe to %v; want only its own replies under FEEDLINE_NATS_INBOX %q, a prefix no other user shares", u.Username, sub, inbox)
		}
		for _, subj := range u.Permissions.Publish.Allow {
			manages := subj == ">" || subj == "$JS.>" || subj == "$JS.API.>" || subj == "$JS.API.STREAM.>" ||
				strings.HasPrefix(subj, "$JS.API.STREAM.CREATE.") || strings.HasPrefix(subj, "$JS.API.STREAM.UPDATE.") ||
				strings.HasPrefix(subj, "$JS.API.STREAM.DELETE.") || strings.HasPrefix(subj, "$JS.API.STREAM.PURGE.") && !purgesOwnSubjects(subj)
			switch {
			case manages && !pr.OneShot:
				fail("NATS user %s of service %s may publish %s: only the declaring service manages streams", u.Username, name, subj)
			case pr.OneShot && (subj == ">" || strings.HasPrefix(subj, "$JS.API.STREAM.DELETE.")):
				fail("NATS user %s of service %s may publish %s: declaring needs create and update, not delete", u.Username, name, subj)
			}
		}
		if !pr.OneShot && !pr.cfg.NATSNoDeclare {
			fail("service %s declares streams at start (FEEDLINE_NATS_DECLARE is not false) as user %s, who may not", name, u.Username)
		}
	}
	return errors.Join(errs...)
}

// purgesOwnSubjects: the API purges a cut upload's chunks and a finished
// upload's raw batches, normalise a closed upload's staged changes, subject
// by subject; no other purge is a service's right.
func purgesOwnSubjects(subj string) bool {
	return subj == "$JS.API.STREAM.PURGE.OBJ_uploads" || subj == "$JS.API.STREAM.PURGE.RAW" || subj == "$JS.API.STREAM.PURGE.STAGED"
}

func (d *Deployment) checkNATSConfig(path string, opts *server.Options, readers []string) error {
	var errs []error
	fail := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{filepath.Base(path)}, a...)...))
	}
	if opts.Port != natsClientPort {
		fail("client port %d, want %d", opts.Port, natsClientPort)
	}
	if !opts.JetStream || opts.StoreDir == "" {
		fail("JetStream is not enabled with a store_dir")
	}
	if opts.MaxPayload < pipeline.MaxPayload {
		fail("max_payload %d is below the %d bytes streams accept (pipeline.MaxPayload)", opts.MaxPayload, pipeline.MaxPayload)
	}
	if opts.Cluster.Name == "" || opts.Cluster.Port == 0 {
		fail("no cluster name and port")
	}
	nodes := d.roles["nats"]
	var routed []string
	for _, r := range opts.Routes {
		routed = append(routed, r.Hostname())
		if !slices.Contains(nodes, r.Hostname()) {
			fail("route %s: %s is not a NATS service %v", r, r.Hostname(), nodes)
		}
		if r.Port() != strconv.Itoa(opts.Cluster.Port) {
			fail("route %s: port %s, the cluster listens on %d", r, r.Port(), opts.Cluster.Port)
		}
	}
	if len(opts.Routes) != 3 {
		fail("%d routes %v, want 3: one per node", len(opts.Routes), routed)
	}
	for _, n := range nodes {
		if !slices.Contains(routed, n) {
			fail("routes %v leave out node %s", routed, n)
		}
	}
	monitor := strconv.Itoa(opts.HTTPPort)
	for _, n := range readers {
		s := d.p.Services[n]
		stored := false
		for _, v := range s.Volumes {
			stored = stored || (v.Type == types.VolumeTypeVolume && (opts.StoreDir == v.Target || strings.HasPrefix(opts.StoreDir, v.Target+"/")))
		}
		if !stored {
			fail("node %s keeps JetStream in %s, which is not on a named volume", n, opts.StoreDir)
		}
		if u := healthcheckURL(s.HealthCheck); u == nil || u.Port() != monitor {
			fail("node %s: healthcheck %v does not ask the monitoring port %s", n, u, monitor)
		}
	}
	// The exporter must read every node on its monitoring port.
	for _, e := range d.roles["nats-exporter"] {
		var exported []string
		for _, arg := range d.p.Services[e].Command {
			_, raw, _ := strings.Cut(arg, ",")
			if u, err := url.Parse(cmp.Or(raw, arg)); err == nil && u.Scheme == "http" {
				exported = append(exported, u.Hostname())
				if u.Port() != monitor {
					fail("%s reads %s; the monitoring port is %s", e, u, monitor)
				}
			}
		}
		for _, n := range nodes {
			if !slices.Contains(exported, n) {
				fail("%s does not export node %s", e, n)
			}
		}
	}
	return errors.Join(errs...)
}

// promConfig is the part of prometheus.yml the deployment relies on.
type promConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		RelabelConfigs []struct {
			TargetLabel string `yaml:"target_label"`
		} `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

// prometheusConfig reads the config the prometheus service mounts.
func (d *Deployment) prometheusConfig() (promConfig, error) {
	var cfg promConfig
	if len(d.roles["prometheus"]) != 1 {
		return cfg, fmt.Errorf("prometheus services %v, want one", d.roles["prometheus"])
	}
	s := d.p.Services[d.roles["prometheus"][0]]
	target := cmp.Or(argValue(s.Command, "--config.file"), "/etc/prometheus/prometheus.yml")
	path, ok := hostPath(s, target)
	if !ok {
		return cfg, fmt.Errorf("prometheus: %s is not mounted from the repository", target)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// checkPrometheus: every target is a service, and every feedline service is
// scraped by DNS (so all replicas are) on the port it listens on.
func (d *Deployment) checkPrometheus() error {
	cfg, err := d.prometheusConfig()
	if err != nil {
		return err
	}
	var errs []error
	scraped := map[string]int{} // service → port
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "" || jobs[sc.JobName] {
			errs = append(errs, fmt.Errorf("prometheus: job name %q empty or repeated", sc.JobName))
		}
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, _, err := net.SplitHostPort(target)
				if _, ok := d.p.Services[host]; err != nil || !ok {
					errs = append(errs, fmt.Errorf("prometheus job %s: target %q is not service:port", sc.JobName, target))
				}
			}
		}
		for _, dns := range sc.DNSSDConfigs {
			if dns.Type != "A" || dns.Port == 0 {
				errs = append(errs, fmt.Errorf("prometheus job %s: dns_sd type %q port %d, want type A (one record per replica) with a port", sc.JobName, dns.Type, dns.Port))
			}
			for _, n := range dns.Names {
				if _, ok := d.p.Services[n]; !ok {
					errs = append(errs, fmt.Errorf("prometheus job %s: %s is not a service", sc.JobName, n))
				}
				scraped[n] = dns.Port
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.feedline)) {
		port, err := listenPort(d.feedline[name])
		got, ok := scraped[name]
		switch {
		case d.feedline[name].OneShot:
		case err != nil:
		case !ok:
			errs = append(errs, fmt.Errorf("prometheus does not scrape service %s", name))
		case strconv.Itoa(got) != port:
			errs = append(errs, fmt.Errorf("prometheus scrapes %s on port %d; it listens on %s", name, got, port))
		}
	}
	return errors.Join(errs...)
}

// metricCatalog maps every metric the code registers to its label names.
func metricCatalog(served func() *prometheus.Registry) (map[string][]string, error) {
	reg := pipeline.NewMetrics().Registry
	if served != nil {
		reg = served()
	}
	// Describe rather than Gather: a vector without observations gathers
	// nothing, but describes its name and labels.
	descs := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(descs)
		close(descs)
	}()
	re := regexp.MustCompile(`^Desc\{fqName: "([^"]+)".*variableLabels: \{([^}]*)\}\}$`)
	catalog := map[string][]string{}
	var errs []error
	for desc := range descs {
		m := re.FindStringSubmatch(desc.String())
		if m == nil {
			errs = append(errs, fmt.Errorf("cannot read %s", desc))
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		catalog[m[1]] = labels
	}
	if len(catalog) == 0 {
		errs = append(errs, errors.New("the pipeline registers no metrics"))
	}
	// Prometheus adds up{} to every target itself.
	catalog["up"] = nil
	return catalog, errors.Join(errs...)
}

// checkGrafana: the provisioned datasource is the Prometheus service, and
// every dashboard query reads metrics and labels that exist; every
// feedline_* metric the pipeline registers is on some panel.
func (d *Deployment) checkGrafana() error {
	if len(d.roles["grafana"]) != 1 {
		return fmt.Errorf("grafana services %v, want one", d.roles["grafana"])
	}
	s := d.p.Services[d.roles["grafana"][0]]
	prov, ok := hostPath(s, "/etc/grafana/provisioning")
	if !ok {
		return errors.New("grafana: /etc/grafana/provisioning is not mounted from the repository")
	}
	prom, err := d.prometheusConfig()
	if err != nil {
		return err
	}
	// Labels Prometheus attaches to every scraped series.
	targetLabels := map[string]bool{"job": true, "instance": true}
	for _, sc := range prom.ScrapeConfigs {
		for _, rc := range sc.RelabelConfigs {
			targetLabels[rc.TargetLabel] = true
		}
	}
	catalog, err := metricCatalog(d.binary.Metrics)
	if err != nil {
		return err
	}

	var errs []error
	uids := map[string]bool{}
	var datasources struct {
		Datasources []struct {
			UID, Type, URL string
			JSONData       struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := readYAMLDir(filepath.Join(prov, "datasources"), func(path string, b []byte) error {
		if err := yaml.Unmarshal(b, &datasources); err != nil {
			return err
		}
		for _, ds := range datasources.Datasources {
			uids[ds.UID] = true
			if ds.Type != "prometheus" {
				continue
			}
			u, err := url.Parse(ds.URL)
			if err != nil || !slices.Contains(d.roles["prometheus"], u.Hostname()) {
				errs = append(errs, fmt.Errorf("%s: datasource %s url %q is not the prometheus service", path, ds.UID, ds.URL))
			}
			if ds.JSONData.TimeInterval != prom.Global.ScrapeInterval {
				errs = append(errs, fmt.Errorf("%s: timeInterval %q, Prometheus scrapes every %q", path, ds.JSONData.TimeInterval, prom.Global.ScrapeInterval))
			}
		}
		return nil
	}); err != nil {
		return err
	}

	used := map[string]bool{}
	dashboards := 0
	var providers struct {
		Providers []struct {
			Name    string
			Options struct{ Path string }
		}
	}
	if err := readYAMLDir(filepath.Join(prov, "dashboards"), func(path string, b []byte) error {
		if err := yaml.Unmarshal(b, &providers); err != nil {
			return err
		}
		for _, p := range providers.Providers {
			dir, ok := hostPath(s, p.Options.Path)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: provider %s reads %s, which is not mounted from the repository", path, p.Name, p.Options.Path))
				continue
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			for _, f := range files {
				dashboards++
				b, err := os.ReadFile(f)
				if err == nil {
					err = checkDashboard(b, catalog, uids, targetLabels, used)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(f), err))
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if dashboards == 0 {
		errs = append(errs, errors.New("grafana provisions no dashboard"))
	}
	for _, name := range slices.Sorted(maps.Keys(catalog)) {
		if strings.HasPrefix(name, "feedline_") && !used[name] {
			errs = append(errs, fmt.Errorf("no dashboard panel shows %s", name))
		}
	}
	return errors.Join(errs...)
}

func readYAMLDir(dir string, each func(path string, b []byte) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext != ".yml" && ext != ".yaml" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err == nil {
			err = each(path, b)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// checkDashboard checks one Grafana dashboard's queries and datasources, and
// adds the metrics it reads to used.
func checkDashboard(b []byte, catalog map[string][]string, uids, targetLabels, used map[string]bool) error {
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		return err
	}
	var errs []error
	var exprs, variables []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ds, ok := v["datasource"].(map[string]any); ok {
				if uid, _ := ds["uid"].(string); !uids[uid] {
					errs = append(errs, fmt.Errorf("datasource uid %q is not provisioned", uid))
				}
			}
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			if v["type"] == "query" {
				switch q := v["query"].(type) {
				case string:
					variables = append(variables, q)
				case map[string]any:
					if s, ok := q["query"].(string); ok {
						variables = append(variables, s)
					}
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	if len(exprs) == 0 {
		errs = append(errs, errors.New("no queries"))
	}
	for _, e := range exprs {
		metrics, labels := promqlRefs(e)
		if len(metrics) == 0 {
			errs = append(errs, fmt.Errorf("query %q reads no metric", e))
		}
		allowed := maps.Clone(targetLabels)
		for _, m := range metrics {
			base, ls, ok := metricLabels(catalog, m)
			if !ok {
				errs = append(errs, fmt.Errorf("query %q: the code registers no metric %s", e, m))
				continue
			}
			used[base] = true
			for _, l := range ls {
				allowed[l] = true
			}
		}
		for _, l := range labels {
			if !allowed[l] {
				errs = append(errs, fmt.Errorf("query %q: no series it reads has label %s", e, l))
			}
		}
	}
	labelValues := regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)
	for _, q := range variables {
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			errs = append(errs, fmt.Errorf("variable query %q: want label_values(metric, label)", q))
			continue
		}
		base, ls, ok := metricLabels(catalog, m[1])
		used[base] = used[base] || ok
		if !ok || !(slices.Contains(ls, m[2]) || targetLabels[m[2]]) {
			errs = append(errs, fmt.Errorf("variable query %q: no metric %s with label %s", q, m[1], m[2]))
		}
	}
	return errors.Join(errs...)
}

// metricLabels finds a series name in the catalog, including the _bucket,
// _sum and _count series of histograms and summaries, and returns the
// registered name with its labels.
func metricLabels(catalog map[string][]string, name string) (string, []string, bool) {
	if ls, ok := catalog[name]; ok {
		return name, ls, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if ls, ok := catalog[base]; ok {
				if suffix == "_bucket" {
					ls = append(slices.Clone(ls), "le")
				}
				return base, ls, true
			}
		}
	}
	return "", nil, false
}

// promqlRefs lists the metric names and the label names a PromQL query (with
// Grafana variables) refers to, sorted. It is a scanner, not a parser: enough
// for dashboard queries.
func promqlRefs(expr string) (metrics, labels []string) {
	var (
		matchers  = regexp.MustCompile(`\{[^}]*\}`)
		strs      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
		matchName = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
		ranges    = regexp.MustCompile(`\[[^\]]*\]`)
		grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
		ident     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	)
	seenL := map[string]bool{}
	expr = matchers.ReplaceAllStringFunc(expr, func(block string) string {
		for _, m := range matchName.FindAllStringSubmatch(strs.ReplaceAllString(block, `""`), -1) {
			seenL[m[1]] = true
		}
		return " "
	})
	expr = ranges.ReplaceAllString(expr, " ")
	expr = grouping.ReplaceAllStringFunc(expr, func(g string) string {
		inner := grouping.FindStringSubmatch(g)[1]
		for _, l := range strings.Split(inner, ",") {
			if l = strings.TrimSpace(l); l != "" {
				seenL[l] = true
			}
		}
		return " "
	})
	expr = strs.ReplaceAllString(expr, " ")
	keywords := []string{"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan", "Inf", "NaN"}
	seenM := map[string]bool{}
	for _, loc := range ident.FindAllStringIndex(expr, -1) {
		word := expr[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.$", rune(expr[loc[0]-1])) {
			continue // a number's exponent, a duration's unit, a Grafana variable
		}
		if strings.HasPrefix(strings.TrimLeft(expr[loc[1]:], " \t\n"), "(") || slices.Contains(keywords, word) {
			continue // a function or an operator
		}
		seenM[word] = true
	}
	return slices.Sorted(maps.Keys(seenM)), slices.Sorted(maps.Keys(seenL))
}

// chUsers is the part of a ClickHouse users.d file the deployment relies on.
type chUsers struct {
	Profiles struct {
		List []struct {
			XMLName  xml.Name
			Readonly string `xml:"readonly"`
		} `xml:",any"`
	} `xml:"profiles"`
	Users struct {
		List []struct {
			XMLName  xml.Name
			Password struct {
				FromEnv string `xml:"from_env,attr"`
			} `xml:"password"`
			Profile string   `xml:"profile"`
			Grants  []string `xml:"grants>query"`
		} `xml:",any"`
	} `xml:"users"`
}

// checkClickHouseUsers: analysts get a read-only user on the feedline
// database, with a password from the server's environment.
func (d *Deployment) checkClickHouseUsers() error {
	if len(d.roles["clickhouse"]) != 1 {
		return fmt.Errorf("clickhouse services %v, want one", d.roles["clickhouse"])
	}
	name := d.roles["clickhouse"][0]
	s := d.p.Services[name]
	const usersDir = "/etc/clickhouse-server/users.d/"
	var errs []error
	found := false
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind || !strings.HasPrefix(v.Target, usersDir) {
			continue
		}
		b, err := os.ReadFile(v.Source)
		if err != nil {
			return err
		}
		var cfg chUsers
		if err := xml.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("%s: %w", v.Source, err)
		}
		profiles := map[string]string{}
		for _, p := range cfg.Profiles.List {
			profiles[p.XMLName.Local] = strings.TrimSpace(p.Readonly)
		}
		db, _ := d.envOf(name, "CLICKHOUSE_DB")
		for _, u := range cfg.Users.List {
			if u.XMLName.Local != "analyst" {
				continue
			}
			found = true
			fail := func(format string, a ...any) {
				errs = append(errs, fmt.Errorf("%s: user analyst: "+format, append([]any{filepath.Base(v.Source)}, a...)...))
			}
			// A profile defined here must set readonly; otherwise only the
			// image's own "readonly" profile is read-only.
			if ro, ok := profiles[u.Profile]; (ok && ro != "1" && ro != "2") || (!ok && u.Profile != "readonly") {
				fail("profile %q is not read-only", u.Profile)
			}
			if v, ok := d.envOf(name, u.Password.FromEnv); u.Password.FromEnv == "" || !ok || v == "" {
				fail("password from_env %q is not set on service %s", u.Password.FromEnv, name)
			}
			for _, g := range u.Grants {
				if g != "GRANT SELECT ON "+db+".*" {
					fail("grant %q, want only GRANT SELECT ON %s.*", g, db)
				}
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("service %s mounts no users.d file with an analyst user", name))
	}
	return errors.Join(errs...)
}

// Mutations for CheckCatchesMistakes.

func setServiceEnv(p *types.Project, service, key, value string) {
	s := p.Services[service]
	s.Environment = maps.Clone(s.Environment)
	s.Environment[key] = &value
	p.Services[service] = s
}

func setServiceCommand(p *types.Project, service string, args ...string) {
	s := p.Services[service]
	s.Command = args
	p.Services[service] = s
}

// repoint makes service mount source at target instead of the repository file.
func repoint(p *types.Project, service, target, source string) {
	s := p.Services[service]
	s.Volumes = slices.Clone(s.Volumes)
	for i, v := range s.Volumes {
		if v.Target == target {
			s.Volumes[i].Source = source
		}
	}
	p.Services[service] = s
}

// editedCopy copies path into a temporary directory with old replaced by new.
func editedCopy(t *testing.T, path, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.ReplaceAll(string(b), old, new)
	if edited == string(b) {
		t.Fatalf("%s has no %q to replace", path, old)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// editDashboards copies the dashboards directory with old replaced by new.
func editDashboards(t *testing.T, p *types.Project, old, new string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(p.WorkingDir, "deploy/grafana/dashboards/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	dir := t.TempDir()
	changed := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.ReplaceAll(string(b), old, new)
		changed = changed || edited != string(b)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !changed {
		t.Fatalf("no dashboard has %q to replace", old)
	}
	return dir
}

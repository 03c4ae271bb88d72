package main

// The deployment's NATS users are checked on the real nats-server: one node
// of deploy/nats/nats.conf runs alone on loopback, with the passwords
// compose.yaml gives it, and real clients sign in as the services do.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"feedline/connectors/decode"
	"feedline/connectors/natskv"
	"feedline/deploy/deploytest"
	"feedline/schemas"
	"feedline/topology"
)

// violations collects what the server logs about refused operations.
type violations struct {
	mu    sync.Mutex
	lines []string
}

func (v *violations) Errorf(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	if strings.Contains(line, "Violation") {
		v.mu.Lock()
		v.lines = append(v.lines, line)
		v.mu.Unlock()
	}
}
func (v *violations) Noticef(string, ...any) {}
func (v *violations) Warnf(string, ...any)   {}
func (v *violations) Fatalf(string, ...any)  {}
func (v *violations) Debugf(string, ...any)  {}
func (v *violations) Tracef(string, ...any)  {}

// take returns what was logged since the last call.
func (v *violations) take() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := v.lines
	v.lines = nil
	return out
}

// composeNATS runs the first NATS node of the deployment alone: its
// configuration and environment, without routes, on a loopback port.
func composeNATS(t *testing.T, d *deploytest.Deployment) (string, *violations) {
	t.Helper()
	node := d.Roles("nats")[0]
	opts, err := d.NATSOptions(node)
	if err != nil {
		t.Fatal(err)
	}
	opts.ServerName = node
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	v := &violations{}
	ns.SetLoggerV2(v, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL(), v
}

// localConfig is service's configuration from compose.yaml, pointed at the
// test's NATS and with the other backends embedded (or the test Redis).
func localConfig(t *testing.T, d *deploytest.Deployment, service, natsURL, redisURL string) serveConfig {
	t.Helper()
	pr, ok := d.Feedline()[service]
	if !ok {
		t.Fatalf("no feedline service %s", service)
	}
	env := maps.Clone(pr.Env)
	for k, v := range map[string]string{
		"FEEDLINE_NATS": natsURL, "FEEDLINE_NATS_REPLICAS": "1", "FEEDLINE_DATA": t.TempDir(), "FEEDLINE_HTTP": "127.0.0.1:0",
		"FEEDLINE_ES_URL": "", "FEEDLINE_ES_USERNAME": "", "FEEDLINE_ES_PASSWORD": "", "FEEDLINE_CLICKHOUSE_URL": "", "FEEDLINE_REDIS_URL": redisURL,
	} {
		env[k] = v
	}
	cfg, err := configFor(t, env, pr.Args)
	if err != nil {
		t.Fatalf("service %s: %v", service, err)
	}
	return cfg
}

// declareAsSetup runs the deployment's one-off declaring service.
func declareAsSetup(t *testing.T, d *deploytest.Deployment, natsURL string) {
	t.Helper()
	for name, pr := range d.Feedline() {
		if !pr.OneShot {
			continue
		}
		localConfig(t, d, name, natsURL, "") // sets its environment
		var out, errOut bytes.Buffer
		if code := run(t.Context(), pr.Args, &out, &errOut); code != 0 {
			t.Fatalf("service %s (feedline %v) exited %d: %s", name, pr.Args, code, errOut.String())
		}
		return
	}
	t.Fatal("no service declares the streams")
}

// natsClient is a raw client signed in as a service of the deployment.
type natsClient struct {
	t    *testing.T
	name string
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func connectAs(t *testing.T, d *deploytest.Deployment, service, natsURL string) *natsClient {
	t.Helper()
	cfg := localConfig(t, d, service, natsURL, "")
	c := &natsClient{t: t, name: service, errs: make(chan error, 64)}
	nc, err := nats.Connect(natsURL, nats.UserInfo(cfg.NATSAuth.User, cfg.NATSAuth.Password), nats.CustomInboxPrefix(cfg.NATSInbox),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.errs <- err }))
	if err != nil {
		t.Fatalf("sign in as %s: %v", service, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, _ = jetstream.New(nc)
	return c
}

// allowed runs op and expects it to succeed without a refusal.
func (c *natsClient) allowed(what string, op func(ctx context.Context) error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	if err := op(ctx); err != nil {
		c.t.Errorf("%s may %s: %v", c.name, what, err)
	}
	select {
	case err := <-c.errs:
		c.t.Errorf("%s may %s, but the server refused: %v", c.name, what, err)
	default:
	}
}

// refused runs op and expects the server to refuse subject.
func (c *natsClient) refused(what, subject string, op func(ctx context.Context) error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Second)
	defer cancel()
	if err := op(ctx); err == nil && !strings.HasPrefix(subject, "_INBOX") {
		c.t.Errorf("%s may %s", c.name, what)
	}
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject) {
				return
			}
			c.t.Errorf("%s: %s: unexpected error %v", c.name, what, err)
		case <-deadline:
			c.t.Errorf("%s: %s: the server did not refuse %s", c.name, what, subject)
			return
		}
	}
}

// Each service user can do what its stage needs and nothing it does not
// need, and nobody gets in without credentials.
func TestComposeNATSUsersHaveTheirStagesRights(t *testing.T) {
	d := loadDeployment(t)
	natsURL, logged := composeNATS(t, d)
	for name, opts := range map[string][]nats.Option{"no credentials": nil, "a wrong password": {nats.UserInfo("api", "guess")}} {
		if nc, err := nats.Connect(natsURL, opts...); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	// A service started before nats-setup says what is missing and what to run.
	early := localConfig(t, d, "ingest", natsURL, "")
	early.Log = slog.New(slog.DiscardHandler)
	if sys, err := startSystem(t.Context(), early); err == nil {
		_ = sys.Stop(t.Context())
		t.Error("ingest started on a server without streams")
	} else if !strings.Contains(err.Error(), "feedline nats declare") {
		t.Errorf("ingest before the streams are declared: %v", err)
	}
	declareAsSetup(t, d, natsURL)

	api := connectAs(t, d, "api", natsURL)
	ingest := connectAs(t, d, "ingest", natsURL)
	normalise := connectAs(t, d, "normalise", natsURL)
	publish := func(c *natsClient, subject string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.js.Publish(ctx, subject, []byte(`{}`))
			return err
		}
	}
	file := []byte("id,title\n1,kettle\n")

	// What the stages do.
	api.allowed("publish an upload event", publish(api, "catalog.uploaded.alpha"))
	api.allowed("put an uploaded file", func(ctx context.Context) error {
		st, err := api.js.ObjectStore(ctx, topology.ObjectUploads)
		if err != nil {
			return err
		}
		_, err = st.PutBytes(ctx, "alpha/u1", file)
		return err
	})
	api.allowed("keep a partner", func(ctx context.Context) error {
		kv, err := api.js.KeyValue(ctx, topology.BucketPartners)
		if err != nil {
			return err
		}
		if _, err := kv.Put(ctx, "alpha", []byte(`{"id":"alpha"}`)); err != nil {
			return err
		}
		_, err = kv.Get(ctx, "alpha")
		return err
	})
	ingest.allowed("publish raw batches", publish(ingest, schemas.RawSubject("alpha", "01jf3k6v0c8m2r9q4t7w5x1y2z")))
	ingest.allowed("read an uploaded file", func(ctx context.Context) error {
		st, err := ingest.js.ObjectStore(ctx, topology.ObjectUploads)
		if err != nil {
			return err
		}
		got, err := st.GetBytes(ctx, "alpha/u1")
		if err == nil && !bytes.Equal(got, file) {
			err = fmt.Errorf("read %q", got)
		}
		return err
	})
	ingest.allowed("note progress on an upload", func(ctx context.Context) error {
		kv, err := ingest.js.KeyValue(ctx, topology.BucketUploads)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, "u1.ingest", []byte(`{}`))
		return err
	})
	normalise.allowed("publish product batches", publish(normalise, "catalog.product.alpha"))
	normalise.allowed("fold the PRODUCTS log", func(ctx context.Context) error {
		st, err := normalise.js.Stream(ctx, topology.StreamProducts)
		if err != nil {
			return err
		}
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return err
		}
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err == nil && m.Subject() != "catalog.product.alpha" {
			err = fmt.Errorf("read %s", m.Subject())
		}
		return err
	})
	normalise.allowed("read a product's current version", func(ctx context.Context) error {
		st, err := normalise.js.Stream(ctx, topology.StreamProducts)
		if err != nil {
			return err
		}
		_, err = st.GetMsg(ctx, 1)
		return err
	})
	normalise.allowed("publish an upload's issues", func(ctx context.Context) error {
		data, _ := json.Marshal(schemas.IssueBatch{Upload: "u1", Partner: "alpha", Issues: []schemas.Issue{{Row: 1, Code: schemas.CodeMissingTitle}}})
		_, err := normalise.js.Publish(ctx, schemas.IssuesSubject("alpha", "u1"), data)
		return err
	})
	api.allowed("purge a finished upload's raw batches", func(ctx context.Context) error {
		st, err := api.js.Stream(ctx, topology.StreamRaw)
		if err != nil {
			return err
		}
		return st.Purge(ctx, jetstream.WithPurgeSubject(schemas.RawSubject("alpha", "01jf3k6v0c8m2r9q4t7w5x1y2z")))
	})
	api.allowed("read an upload's issues", func(ctx context.Context) error {
		n := 0
		st, err := api.js.Stream(ctx, topology.StreamIssues)
		if err != nil {
			return err
		}
		if err := (natskv.Issues{Stream: st}).Each(ctx, "alpha", "u1", func(schemas.Issue) error { n++; return nil }); err != nil {
			return err
		}
		if ok, err := (natskv.Issues{Stream: st}).Stored(ctx, "alpha", "u1"); err != nil || !ok || n != 1 {
			return fmt.Errorf("read %d issues, stored %v (%v)", n, ok, err)
		}
		return nil
	})
	if lines := logged.take(); len(lines) > 0 {
		t.Errorf("the server refused what a stage needs:\n%s", strings.Join(lines, "\n"))
	}

	// What they must not do.
	ingest.refused("publish product events", "catalog.product.beta", publish(ingest, "catalog.product.beta"))
	ingest.refused("publish upload events", "catalog.uploaded.beta", publish(ingest, "catalog.uploaded.beta"))
	ingest.refused("open the partners bucket", "$JS.API.STREAM.INFO.KV_partners", func(ctx context.Context) error {
		_, err := ingest.js.KeyValue(ctx, topology.BucketPartners)
		return err
	})
	ingest.refused("read a partner's key hash", "$JS.API.DIRECT.GET.KV_partners.$KV.partners.alpha", func(ctx context.Context) error {
		_, err := ingest.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_partners.$KV.partners.alpha", nil)
		return err
	})
	ingest.refused("read every reply", "_INBOX.>", func(context.Context) error {
		_, err := ingest.nc.SubscribeSync("_INBOX.>")
		return err
	})
	ingest.refused("read the API's replies", "_INBOX_api.>", func(context.Context) error {
		_, err := ingest.nc.SubscribeSync("_INBOX_api.>")
		return err
	})
	api.refused("read the dead-letter stream", "$JS.API.STREAM.INFO.DLQ", func(ctx context.Context) error {
		_, err := api.js.Stream(ctx, topology.StreamDLQ)
		return err
	})
	api.refused("create a consumer on the dead-letter stream", "$JS.API.CONSUMER.CREATE.DLQ.peek", func(ctx context.Context) error {
		_, err := api.js.CreateOrUpdateConsumer(ctx, topology.StreamDLQ, jetstream.ConsumerConfig{Durable: "peek"})
		return err
	})
	api.refused("publish product events", "catalog.product.alpha", publish(api, "catalog.product.alpha"))
	api.refused("delete a stream", "$JS.API.STREAM.DELETE.UPLOADS", func(ctx context.Context) error {
		return api.js.DeleteStream(ctx, topology.StreamUploads)
	})
	normalise.refused("take over the index stage's consumer", "$JS.API.CONSUMER.CREATE.PRODUCTS.index", func(ctx context.Context) error {
		_, err := normalise.js.CreateOrUpdateConsumer(ctx, topology.StreamProducts, jetstream.ConsumerConfig{Durable: "index", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
	normalise.refused("pull from the index stage's consumer", "$JS.API.CONSUMER.MSG.NEXT.PRODUCTS.index", func(ctx context.Context) error {
		_, err := normalise.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.PRODUCTS.index", []byte(`{"batch":1}`))
		return err
	})
	normalise.refused("write a mapping", "$KV.mappings.alpha.1", func(ctx context.Context) error {
		_, err := normalise.js.Publish(ctx, "$KV.mappings.alpha.1", []byte(`{}`))
		return err
	})
	setup := connectAs(t, d, "nats-setup", natsURL)
	setup.refused("delete a stream", "$JS.API.STREAM.DELETE.DLQ", func(ctx context.Context) error {
		return setup.js.DeleteStream(ctx, topology.StreamDLQ)
	})
	setup.refused("publish product events", "catalog.product.alpha", publish(setup, "catalog.product.alpha"))

	// Nothing refused reached a stream.
	admin, err := nats.Connect(natsURL, nats.UserInfo("admin", os.Getenv("NATS_ADMIN_PASSWORD")))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	for stream, want := range map[string]uint64{topology.StreamProducts: 1, topology.StreamUploads: 1, topology.StreamDLQ: 0} {
		st, err := ajs.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := st.Info(t.Context()); err != nil || info.State.Msgs != want {
			t.Errorf("stream %s holds %+v (%v), want %d messages", stream, info.State, err, want)
		}
	}
	for stream, name := range map[string]string{topology.StreamProducts: "index", topology.StreamDLQ: "peek"} {
		if _, err := ajs.Consumer(t.Context(), stream, name); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("consumer %s on %s: %v, want none", name, stream, err)
		}
	}
}

// The real stages run as their deployment users against that server and an
// upload, a dead-lettered file and a post pass end to end without one
// refused operation.
func TestComposeStagesRunAsTheirNATSUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every stage")
	}
	u := emptyRedisDB(t, 8)

	d := loadDeployment(t)
	natsURL, logged := composeNATS(t, d)
	declareAsSetup(t, d, natsURL)
	var logs safeBuffer
	systems := map[string]*system{}
	var apiSys *testSystem
	for _, service := range []string{"api", "ingest", "normalise", "index", "analytics", "fanout"} {
		cfg := localConfig(t, d, service, natsURL, u.String())
		cfg.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("service", service)
		if service == "api" {
			cfg.AdminKey, cfg.TokenKey = testAdminKey, testTokenKey
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		sys, err := startSystem(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("service %s as NATS user %s: %v\n%s", service, cfg.NATSAuth.User, err, logs.String())
		}
		ts := &testSystem{t: t, sys: sys, base: "http://" + sys.addr, dir: cfg.DataDir}
		t.Cleanup(ts.stop)
		systems[service] = sys
		if service == "api" {
			apiSys = ts
		}
	}

	key := apiSys.addPartner("alpha")
	apiSys.setMapping("alpha", key, decode.GeneratedMapping)
	var file bytes.Buffer
	if err := decode.GenerateCSV(&file, 2_000, 1); err != nil {
		t.Fatal(err)
	}
	st := apiSys.uploadOK("alpha", key, file.Bytes(), "")
	if c := st.Counts; st.State != schemas.StateDone || c.Read != 2_000 || c.Accepted == 0 || c.Indexed != c.Accepted {
		t.Errorf("upload through the stages as their users: %s %+v", st.State, c)
	}
	// A full feed of half the catalog is staged, held, and applied once
	// confirmed; another is held and cancelled.
	var half bytes.Buffer
	if err := decode.GenerateCSV(&half, 1_000, 1); err != nil {
		t.Fatal(err)
	}
	for _, decision := range []string{schemas.DecisionCancel, schemas.DecisionConfirm} {
		held := apiSys.uploadOK("alpha", key, half.Bytes(), "")
		if held.State != schemas.StateHeld || held.Hold == nil {
			t.Fatalf("a full feed of half the catalog as the stages' users: %s %+v", held.State, held.Hold)
		}
		want := map[string]string{schemas.DecisionCancel: schemas.StateCancelled, schemas.DecisionConfirm: schemas.StateDone}[decision]
		if got := apiSys.decide(held.ID, key, decision); got.State != want || (decision == schemas.DecisionConfirm && got.Counts.Deleted != held.Hold.WouldDelete) {
			t.Errorf("%s as the stages' users: %s %+v", decision, got.State, got.Counts)
		}
	}
	corrupt := append([]byte("PAR1"), bytes.Repeat([]byte{0x15, 0x04, 0x15, 0x80}, 2000)...)
	if bad := apiSys.uploadOK("alpha", key, append(corrupt, "PAR1"...), ""); bad.State != schemas.StateFailed {
		t.Errorf("a corrupt file ended %s, want failed (dead-lettered by ingest)", bad.State)
	}

	alice, bob := apiSys.shopper("alice"), apiSys.shopper("bob")
	bob.follow("user", "alice")
	post := alice.post("made it through every service")
	eventually(t, "the post in bob's feed", func() bool { return strings.Contains(strings.Join(bob.feedIDs(), ","), post) })
	if r := apiSys.do(http.MethodGet, "/v1/search?q=kettle", "", nil, ""); r.Status != http.StatusOK {
		t.Errorf("search: %d %s", r.Status, r.Body)
	}
	eventually(t, "analytics to read catalog, search and shopper events", func() bool {
		m := systems["analytics"].metrics.Processed
		return testutil.ToFloat64(m.WithLabelValues("analytics")) > 0 && testutil.ToFloat64(m.WithLabelValues("analytics-search")) > 0 &&
			testutil.ToFloat64(m.WithLabelValues("analytics-social")) > 0
	})

	if lines := logged.take(); len(lines) > 0 {
		t.Errorf("the server refused operations of the stages:\n%s", strings.Join(lines, "\n"))
	}
	if strings.Contains(logs.String(), "nats refused") {
		t.Errorf("a stage was refused an operation:\n%s", logs.String())
	}
}

// safeBuffer is a bytes.Buffer several loggers write to at once.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// emptyRedisDB is database db of $FEEDLINE_TEST_REDIS, emptied: the
// deployment tests' own, since the services' NATS users may not rebuild
// feeds from the log without Redis.
func emptyRedisDB(t *testing.T, db int) *url.URL {
	t.Helper()
	redisURL := os.Getenv("FEEDLINE_TEST_REDIS")
	if redisURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FEEDLINE_TEST_REDIS is not set; .ci/run starts a Redis for this test")
		}
		t.Skip("FEEDLINE_TEST_REDIS is not set (the services' NATS users may not rebuild feeds from the log)")
	}
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = fmt.Sprint("/", db)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.FlushDB(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

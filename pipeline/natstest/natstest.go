// Package natstest gives tests a real three-node NATS JetStream cluster on
// loopback, with the deployment's users (deploy/nats/users.conf):
//
//   - Shared is the cluster `make services` runs (FEEDLINE_TEST_NATS_CLUSTER
//     and the FEEDLINE_TEST_NATS_<USER>_PASSWORD variables), for tests that
//     leave its nodes alone. Tests on it use streams of their own names or
//     remove what they declared.
//   - Start runs a cluster of the test's own, from the nats-server binary
//     `make services` built (FEEDLINE_TEST_NATS_SERVER) and the configuration
//     deploy/nats/loopback-cluster.sh writes, on free loopback ports, so the
//     test may kill and restart its nodes.
//
// Without the variables a test is skipped, and with CI=true it fails.
package natstest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Users of deploy/nats/users.conf.
var Users = []string{"setup", "admin", "api", "ingest", "normalise", "index", "analytics", "fanout"}

// Cluster is a running three-node cluster.
type Cluster struct {
	t         testing.TB
	passwords map[string]string
	clients   []int // client port of node i+1
	monitors  []int // monitoring port of node i+1
	// Only for a cluster of the test's own.
	bin, dir string
	nodes    []*exec.Cmd
}

// need skips t, or fails it in CI, when variable is unset.
func need(t testing.TB, variable string) string {
	t.Helper()
	v := os.Getenv(variable)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; .ci/run starts the NATS cluster (make services, deploy/services/engines/30-nats-cluster.sh)", variable)
		}
		t.Skipf("%s is not set; run make services (or deploy/services/services.sh up nats-cluster) and source services.env", variable)
	}
	return v
}

// Shared is the cluster of `make services`.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	urls := need(t, "FEEDLINE_TEST_NATS_CLUSTER")
	c := &Cluster{t: t, passwords: map[string]string{}}
	for _, u := range Users {
		c.passwords[u] = need(t, "FEEDLINE_TEST_NATS_"+strings.ToUpper(u)+"_PASSWORD")
	}
	for _, raw := range strings.Split(urls, ",") {
		_, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimSpace(raw), "nats://"))
		if err != nil {
			t.Fatalf("FEEDLINE_TEST_NATS_CLUSTER %q: %v", urls, err)
		}
		p, _ := strconv.Atoi(port)
		c.clients = append(c.clients, p)
	}
	return c
}

// Start runs a cluster of the test's own; it is stopped when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := need(t, "FEEDLINE_TEST_NATS_SERVER")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, passwords: map[string]string{}, bin: bin, dir: t.TempDir(), nodes: make([]*exec.Cmd, 3)}
	for _, u := range Users {
		b := make([]byte, 16)
		_, _ = crand.Read(b)
		// nats-server parses a variable's value as a configuration value:
		// a leading '-' or digit would make it a number.
		c.passwords[u] = "pw" + hex.EncodeToString(b)
	}
	ports := freePorts(t, 9)
	c.clients, c.monitors = ports[0:3], ports[6:9]
	join := func(ps []int) string {
		var s []string
		for _, p := range ps {
			s = append(s, strconv.Itoa(p))
		}
		return strings.Join(s, ",")
	}
	gen := exec.Command(filepath.Join(root, "deploy/nats/loopback-cluster.sh"), c.dir, join(ports[0:3]), join(ports[3:6]), join(ports[6:9]))
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("deploy/nats/loopback-cluster.sh: %v\n%s", err, out)
	}
	t.Cleanup(c.stop)
	for i := range 3 {
		c.launch(i)
	}
	for i := range 3 {
		c.WaitHealthy(i)
	}
	c.waitFormed()
	return c
}

// repoRoot is the directory of go.mod above the working directory.
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
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return ports
}

// launch starts node i (0-based) from its configuration; its files are
// kept across restarts.
func (c *Cluster) launch(i int) {
	c.t.Helper()
	log, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("nats-%d.log", i+1)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(c.bin, "--config", filepath.Join(c.dir, fmt.Sprintf("nats-%d.conf", i+1)))
	cmd.Env = os.Environ()
	for u, pw := range c.passwords {
		cmd.Env = append(cmd.Env, "NATS_"+strings.ToUpper(u)+"_PASSWORD="+pw)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = DieWithTest()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start nats node %d: %v", i+1, err)
	}
	c.nodes[i] = cmd
}

func (c *Cluster) stop() {
	for _, n := range c.nodes {
		if n != nil && n.ProcessState == nil {
			_ = n.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range c.nodes {
		if n == nil || n.ProcessState != nil {
			continue
		}
		done := make(chan struct{})
		go func() { _ = n.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = n.Process.Kill()
			<-done
		}
	}
}

// Kill stops node i (0-based) with SIGKILL: no goodbye to the cluster.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	n := c.nodes[i]
	if n == nil || n.ProcessState != nil {
		c.t.Fatalf("nats node %d is not running", i+1)
	}
	if err := n.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	_ = n.Wait()
}

// Freeze stops node i (0-based) with SIGSTOP: it keeps its connections
// open but answers nothing, as a node on a hung machine does. Thaw ends it;
// a frozen node is thawed when the test ends.
func (c *Cluster) Freeze(i int) {
	c.t.Helper()
	if err := c.nodes[i].Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { c.Thaw(i) })
}

// Thaw lets a frozen node i go on.
func (c *Cluster) Thaw(i int) {
	if n := c.nodes[i]; n != nil && n.ProcessState == nil {
		_ = n.Process.Signal(syscall.SIGCONT)
	}
}

// Restart starts a killed node i again and waits until it has caught up.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.launch(i)
	c.WaitHealthy(i)
	if c.running() == len(c.nodes) {
		c.waitFormed()
	}
}

func (c *Cluster) running() int {
	n := 0
	for _, cmd := range c.nodes {
		if cmd != nil && cmd.ProcessState == nil {
			n++
		}
	}
	return n
}

// metaCluster is what a node's /jsz says of the JetStream meta group.
type metaCluster struct {
	MetaCluster struct {
		Leader   string `json:"leader"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

func (c *Cluster) jsz(i int) (metaCluster, error) {
	var m metaCluster
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", c.monitors[i]))
	if err != nil {
		return m, err
	}
	defer res.Body.Close()
	return m, json.NewDecoder(res.Body).Decode(&m)
}

// waitFormed waits until the meta leader sees every other node online and
// current: before that, a new R3 stream finds "no suitable peers".
func (c *Cluster) waitFormed() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := c.jsz(0); err == nil && m.MetaCluster.Leader != "" {
			if lead, err := c.jsz(c.Node(m.MetaCluster.Leader)); err == nil && len(lead.MetaCluster.Replicas) == len(c.nodes)-1 {
				formed := true
				for _, r := range lead.MetaCluster.Replicas {
					formed = formed && r.Current && !r.Offline
				}
				if formed {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("the NATS cluster did not form within 60s: its meta leader does not see every node current")
}

// WaitHealthy waits until node i (0-based) reports JetStream healthy: up and
// current with the cluster.
func (c *Cluster) WaitHealthy(i int) {
	c.t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", c.monitors[i])
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("nats-%d.log", i+1)))
			c.t.Fatalf("nats node %d not healthy after 60s (%v)\n%s", i+1, err, tail(string(b), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// URLs are the client URLs of every node, comma-separated, as --nats takes them.
func (c *Cluster) URLs() string {
	var us []string
	for i := range c.clients {
		us = append(us, c.URL(i))
	}
	return strings.Join(us, ",")
}

// URLsExcept are the client URLs of every node but node i.
func (c *Cluster) URLsExcept(i int) string {
	var us []string
	for n := range c.clients {
		if n != i {
			us = append(us, c.URL(n))
		}
	}
	return strings.Join(us, ",")
}

// URL is the client URL of node i (0-based).
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.clients[i]) }

// Node is the index of the node with the given server name ("nats-2" is 1).
func (c *Cluster) Node(name string) int {
	c.t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(name, "nats-"))
	if err != nil || n < 1 || n > len(c.clients) {
		c.t.Fatalf("no node named %q", name)
	}
	return n - 1
}

// Password of a user of deploy/nats/users.conf.
func (c *Cluster) Password(user string) string { return c.passwords[user] }

// Inbox is the reply subject prefix user may subscribe to.
func Inbox(user string) string { return "_INBOX_" + user }

// Admin is a raw JetStream client signed in as admin, closed when the test ends.
func (c *Cluster) Admin() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.UserInfo("admin", c.passwords["admin"]), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) {}), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		c.t.Fatalf("sign in as admin: %v", err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return nc, js
}

// StreamLeader is the server name of the node leading stream.
func (c *Cluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", stream)
	}
	return info.Cluster.Leader, nil
}

// ConsumerLeader is the server name of the node leading a stream's consumer.
func (c *Cluster) ConsumerLeader(ctx context.Context, js jetstream.JetStream, stream, consumer string) (string, error) {
	cons, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return "", err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("consumer %s on %s has no leader", consumer, stream)
	}
	return info.Cluster.Leader, nil
}

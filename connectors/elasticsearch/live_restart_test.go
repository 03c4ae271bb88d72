package elasticsearch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"feedline/schemas"
)

// ownNode is a search node one test starts, kills and restarts by itself,
// with the launcher `make services` builds (FEEDLINE_TEST_ES_CLASSPATH), on
// free ports of its own: stopping the shared node on 19200 would break the
// tests running beside it. Its data lives in the test's temporary directory
// and survives a restart.
type ownNode struct {
	t         *testing.T
	classpath string
	home      string
	http, tr  int
	cmd       *exec.Cmd
	exited    chan struct{}
}

func startOwnNode(t *testing.T) *ownNode {
	t.Helper()
	cp := os.Getenv("FEEDLINE_TEST_ES_CLASSPATH")
	if cp == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FEEDLINE_TEST_ES_CLASSPATH is not set; make services (.ci/run) builds the search node launcher and sets it")
		}
		t.Skip("FEEDLINE_TEST_ES_CLASSPATH is not set: no search node launcher (make services builds it)")
	}
	n := &ownNode{t: t, classpath: cp, home: t.TempDir(), http: freePort(t), tr: freePort(t)}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (n *ownNode) url() string { return "http://127.0.0.1:" + strconv.Itoa(n.http) }

// start runs the launcher and waits (up to two minutes) until the node
// answers with a yellow or green cluster.
func (n *ownNode) start() {
	n.t.Helper()
	logFile, err := os.OpenFile(filepath.Join(n.home, "node.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logFile.Close()
	ready := filepath.Join(n.home, "ready")
	n.cmd = exec.Command("java", "-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-cp", n.classpath,
		"feedline.searchnode.SearchNode", "--home", n.home, "--cluster", "feedline-own",
		"--http-port", strconv.Itoa(n.http), "--transport-port", strconv.Itoa(n.tr), "--ready-file", ready)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start the search node: %v", err)
	}
	exited := make(chan struct{})
	n.exited = exited
	go func() { _ = n.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(2 * time.Minute)
	for !n.healthy() {
		select {
		case <-exited:
			n.t.Fatalf("the search node exited while starting:\n%s", n.logTail())
		default:
		}
		if time.Now().After(deadline) {
			n.kill()
			n.t.Fatalf("the search node did not become healthy in 2 minutes:\n%s", n.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *ownNode) healthy() bool {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(n.url() + "/_cluster/health?wait_for_status=yellow&timeout=2s")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// kill ends the node with SIGKILL, as a crash would, and waits for it.
func (n *ownNode) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
	default:
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

func (n *ownNode) logTail() string {
	b, _ := os.ReadFile(filepath.Join(n.home, "node.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// TestLiveOpenSearchNodeRestartPausesTheIndexStage: the node is killed
// (SIGKILL) while product batches keep arriving. The circuit breaker opens,
// Healthy and Apply say schemas.ErrUnavailable, the index stage pauses and
// leaves the batches in JetStream; once the node is back on the same data
// the stage resumes by itself, and the index holds every change: what was
// acknowledged before the crash and what arrived during it. Nothing is
// dead-lettered.
func TestLiveOpenSearchNodeRestartPausesTheIndexStage(t *testing.T) {
	t.Parallel()
	node := startOwnNode(t)
	cfg := liveConfig(node.url())
	cfg.Refresh = ""
	cfg.BreakerFailures, cfg.BreakerTimeout = 3, time.Second
	cfg.MaxRetries, cfg.RetryBackoff = 1, func(int) time.Duration { return 50 * time.Millisecond }
	cfg.RequestTimeout, cfg.HealthTimeout = 5*time.Second, time.Second
	ix := openLive(t, cfg)
	ls := startIndexStage(t, ix)
	want := catalog{}

	batch := 0
	send := func(cs []schemas.ProductChange) {
		batch++
		want.add(cs)
		ls.publish(batch, cs)
	}
	for from := 0; from < 1000; from += 200 {
		send(kettles(from, 200, 1))
	}
	ls.waitSettled(time.Minute)
	want.check(t, ix)

	node.kill()
	// While the node is down: newer versions, new products, deletes.
	for w := range 5 {
		v := uint64(2 + w)
		cs := append(kettles(w*100, 100, v), kettles(1000+w*50, 50, v)...)
		cs = append(cs, remove(schemas.ProductID("shop1", fmt.Sprintf("sku-%06d", 900+w)), v))
		send(cs)
	}
	waitUntil(t, time.Minute, "the index stage to pause", ls.paused)
	if err := ix.Healthy(t.Context()); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Healthy with the node down: %v, want ErrUnavailable", err)
	}
	if !ix.conn.open() {
		t.Error("the circuit breaker is not open with the node down")
	}
	if _, err := ix.Apply(t.Context(), kettles(5000, 1, 1)); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("Apply with the node down: %v, want ErrUnavailable", err)
	}
	if n := ls.unsettled(); n != 5 {
		t.Errorf("%d batches left in JetStream during the outage, want the 5 sent", n)
	}

	node.start()
	ls.waitSettled(2 * time.Minute)
	waitUntil(t, 30*time.Second, "the index stage to resume", func() bool { return !ls.paused() })
	if err := ix.Healthy(t.Context()); err != nil {
		t.Errorf("Healthy after the restart: %v", err)
	}
	want.check(t, ix)
	if n := ls.deadLetters(); n != 0 {
		t.Errorf("%d dead letters after the outage, want none", n)
	}
}

package main

import (
	"bytes"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"feedline/connectors/decode"
	"feedline/pipeline/natstest"
	"feedline/schemas"
)

// process is a feedline binary running as its own process, so a test can
// kill it without a chance to clean up.
type process struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "feedline")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess starts feedline serve with env ("NAME=value") added to
// the test's environment, and waits until it is ready.
func startProcess(t *testing.T, bin, dir, httpAddr string, env ...string) *process {
	t.Helper()
	return startFeedlineEnv(t, bin, httpAddr, append(os.Environ(), env...), "serve", "--data", dir, "--http", httpAddr, "--nats-listen", freeAddr(t))
}

// startFeedline runs the binary with args and waits until httpAddr is ready.
func startFeedline(t *testing.T, bin, httpAddr string, args ...string) *process {
	t.Helper()
	return startFeedlineEnv(t, bin, httpAddr, os.Environ(), args...)
}

// startFeedlineEnv is startFeedline with the environment env.
func startFeedlineEnv(t *testing.T, bin, httpAddr string, env []string, args ...string) *process {
	t.Helper()
	p := &process{logs: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(env, "FEEDLINE_ADMIN_KEY="+testAdminKey)
	p.cmd.Stderr = p.logs
	p.cmd.SysProcAttr = natstest.DieWithTest()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("feedline did not become ready: %v\n%s", err, p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func (p *process) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("feedline exited with %v after SIGTERM\n%s", err, p.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("feedline did not stop within 60s of SIGTERM\n%s", p.logs)
	}
}

func TestKilledMidIngestRestartsWithoutLossOrDuplicates(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a feedline process")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	const rows = 60_000
	var file bytes.Buffer
	if err := decode.GenerateCSV(&file, rows, 7); err != nil {
		t.Fatal(err)
	}

	p := startProcess(t, bin, dir, addr)
	ts := &testSystem{t: t, base: "http://" + addr, dir: dir}
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, decode.GeneratedMapping)
	r := ts.upload("acme", key, file.Bytes(), "mode=full")
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	r.json(t, &acc)

	// Kill as soon as the pipeline is visibly part-way through the file.
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := ts.status(acc.UploadID, key)
		if s.State == schemas.StateDone {
			t.Fatalf("upload finished before the kill; make the file larger")
		}
		if s.Counts.Read > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress before the kill: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill(t)

	p = startProcess(t, bin, dir, addr)
	defer func() {
		if t.Failed() || os.Getenv("FEEDLINE_TEST_LOGS") != "" {
			t.Logf("logs after restart:\n%s", p.logs)
		}
	}()
	st := ts.waitUpload(acc.UploadID, key)
	if st.State != schemas.StateDone {
		t.Fatalf("after restart the upload ended %s: %s\n%s", st.State, st.Error, p.logs)
	}
	c := st.Counts
	if c.Read != rows || c.Accepted+c.Unchanged+c.Rejected != c.Read {
		t.Errorf("counts do not add up: %+v (file has %d rows)", c, rows)
	}
	if c.Rejected == 0 || c.Accepted == 0 {
		t.Errorf("generated file should have accepted and rejected rows: %+v", c)
	}
	valid := c.Read - c.Rejected
	if held := ts.productCount(url.Values{"partner": {"acme"}}); int64(held) != valid {
		t.Errorf("index holds %d products, want every valid row exactly once: %d", held, valid)
	}
	if c.Indexed != valid {
		t.Errorf("indexed = %d, want %d", c.Indexed, valid)
	}
	p.terminate(t)
}

func TestSigtermDrainsAndRestartContinues(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and signals a feedline process")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProcess(t, bin, dir, addr)
	ts := &testSystem{t: t, base: "http://" + addr, dir: dir}
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, customMapping)
	first := ts.uploadOK("acme", key, delimited(testCatalog, ","), "")
	p.terminate(t)
	if !strings.Contains(p.logs.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", p.logs)
	}

	p = startProcess(t, bin, dir, addr)
	defer p.terminate(t)
	if got := ts.status(first.ID, key); got.State != schemas.StateDone || got.Counts != first.Counts {
		t.Errorf("after restart the upload reads %s %+v, want done %+v", got.State, got.Counts, first.Counts)
	}
	again := ts.uploadOK("acme", key, delimited(testCatalog, ","), "")
	if again.Counts.Unchanged != 5 || again.Counts.Accepted != 0 {
		t.Errorf("re-upload after restart: %+v, want 5 unchanged (state rebuilt from the log)", again.Counts)
	}
	if n := len(ts.allProducts("acme")); n != 5 {
		t.Errorf("%d products after restart, want 5", n)
	}
}

package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Tests run against a real server: FEEDLINE_TEST_CLICKHOUSE (a DSN), else a
// private clickhouse-server started here, else they skip (fail under CI).
const dsnEnv = "FEEDLINE_TEST_CLICKHOUSE"

var (
	testDSN    string // server for this run, without a database
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	testDSN = os.Getenv(dsnEnv)
	if testDSN == "" {
		bin, err := exec.LookPath("clickhouse-server")
		switch {
		case err == nil:
			srv, err := startServer(bin)
			if err != nil {
				fmt.Fprintf(os.Stderr, "clickhouse tests: start private server: %v\n", err)
				return 1
			}
			defer srv.stop()
			testDSN = srv.dsn
		case os.Getenv("CI") == "true":
			fmt.Fprintf(os.Stderr, "clickhouse tests: %s is unset and clickhouse-server is not on PATH; CI must run them\n", dsnEnv)
			return 1
		default:
			skipReason = dsnEnv + " is unset and clickhouse-server is not on PATH"
		}
	}
	return m.Run()
}

// needServer skips the test when no ClickHouse is available.
func needServer(t testing.TB) {
	t.Helper()
	if testDSN == "" {
		t.Skip("no ClickHouse: " + skipReason)
	}
}

// privateServer is a clickhouse-server in a temp dir on free loopback ports.
type privateServer struct {
	dir  string
	cmd  *exec.Cmd
	done chan error
	dsn  string
}

func startServer(bin string) (*privateServer, error) {
	dir, err := os.MkdirTemp("", "feedline-clickhouse-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A minimal config of our own: the packaged one opens more fixed ports
	// (interserver, MySQL, PostgreSQL) that may already be taken.
	config := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>%[1]s/server.log</log><errorlog>%[1]s/server.err.log</errorlog><console>0</console></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <http_port>%[3]d</http_port>
    <interserver_http_port>%[4]d</interserver_http_port>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <format_schema_path>%[1]s/format_schemas/</format_schema_path>
    <users_config>%[1]s/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
</yandex>
`, dir, ports[0], ports[1], ports[2])
	users := `<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
`
	for name, text := range map[string]string{"config.xml": config, "users.xml": users} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	cmd := exec.Command(bin, "--config-file="+filepath.Join(dir, "config.xml"))
	cmd.Dir = dir
	stopWithTests(cmd)
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv := &privateServer{dir: dir, cmd: cmd, done: make(chan error, 1), dsn: fmt.Sprintf("clickhouse://127.0.0.1:%d", ports[0])}
	go func() { srv.done <- cmd.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(srv.dsn)
		if err == nil {
			return srv, nil
		}
		select {
		case exitErr := <-srv.done:
			log, _ := os.ReadFile(filepath.Join(dir, "server.err.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("server exited (%v): %s", exitErr, tail(log, 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, fmt.Errorf("server did not answer within 30s: %w", err)
		}
	}
}

func (s *privateServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func ping(dsn string) error {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return err
	}
	opts.DialTimeout = time.Second
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return conn.Ping(ctx)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// testDatabase returns a DSN naming a fresh database (created by Open) and
// the database's name; the database is dropped when the test ends.
func testDatabase(t testing.TB) (dsn, database string) {
	t.Helper()
	needServer(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	database = "feedline_test_" + hex.EncodeToString(b[:])
	u, err := url.Parse(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + database
	t.Cleanup(func() {
		conn := connect(t, "")
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+quoteIdent(database)); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return u.String(), database
}

// connect opens a plain driver connection with database as the default,
// the way an analyst's client connects; "" keeps the server's default.
func connect(t testing.TB, database string) driver.Conn {
	t.Helper()
	opts, err := clickhouse.ParseDSN(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	opts.Auth.Database = database
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// openSink opens a Sink on a fresh database.
func openSink(t testing.TB) (*Sink, string) {
	t.Helper()
	dsn, database := testDatabase(t)
	s, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, database
}

// proxy forwards TCP connections to the server until stopped; then it
// refuses new connections and cuts the open ones, like a server going down.
// A stalled proxy accepts connections and never answers, like a hung one.
type proxy struct {
	ln      net.Listener
	target  string
	stalled bool

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, stalled bool) *proxy {
	t.Helper()
	needServer(t)
	u, err := url.Parse(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, stalled: stalled}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

// dsn is the proxy's address with the path and query of target.
func (p *proxy) dsn(target string) string {
	u, _ := url.Parse(target)
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if p.stalled {
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(up)
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// port of a listener that was closed: connecting to it is refused.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

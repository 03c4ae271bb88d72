package redisfeed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tests run against a real server: FEEDLINE_TEST_REDIS (a redis:// URL),
// else a private redis-server started here, else they skip (fail under CI).
// Each test keeps its keys under a random prefix, so a shared server works.
const urlEnv = "FEEDLINE_TEST_REDIS"

var (
	testURL    string
	skipReason string
	serverBin  string // redis-server, when on PATH
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	serverBin, _ = exec.LookPath("redis-server")
	testURL = os.Getenv(urlEnv)
	if testURL == "" {
		switch {
		case serverBin != "":
			srv, err := startServer(serverBin)
			if err != nil {
				fmt.Fprintf(os.Stderr, "redisfeed tests: start private server: %v\n", err)
				return 1
			}
			defer srv.stop()
			testURL = srv.url
		case os.Getenv("CI") == "true":
			fmt.Fprintf(os.Stderr, "redisfeed tests: %s is unset and redis-server is not on PATH; CI must run them\n", urlEnv)
			return 1
		default:
			skipReason = urlEnv + " is unset and redis-server is not on PATH"
		}
	}
	return m.Run()
}

// needServer skips the test when no Redis is available.
func needServer(t testing.TB) {
	t.Helper()
	if testURL == "" {
		t.Skip("no Redis: " + skipReason)
	}
}

// privateServer is a redis-server without persistence on a free port.
type privateServer struct {
	dir  string
	cmd  *exec.Cmd
	done chan error
	url  string
}

func startServer(bin string) (*privateServer, error) {
	dir, err := os.MkdirTemp("", "feedline-redis-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "server.log"))
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv := &privateServer{dir: dir, cmd: cmd, done: make(chan error, 1), url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	go func() { srv.done <- cmd.Wait() }()

	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ping(srv.url)
		if err == nil {
			return srv, nil
		}
		select {
		case exitErr := <-srv.done:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("server exited (%v): %s", exitErr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, fmt.Errorf("server did not answer within 15s: %w", err)
		}
	}
}

func (s *privateServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

func ping(url string) error {
	o, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	o.MaxRetries = -1
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// openStore opens a Store whose keys live under a fresh random prefix,
// deleted when the test ends.
func openStore(t testing.TB) *Store {
	t.Helper()
	needServer(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "feedline-test-" + hex.EncodeToString(b[:]) + ":"
	s, err := Open(t.Context(), testURL, WithPrefix(prefix))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := s.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan test keys: %v", err)
		}
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			if err := s.rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
				break
			}
			keys = keys[n:]
		}
		s.Close()
	})
	return s
}

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

	"feedline/connectors/redisfeed/redistest"
)

// Tests run against a real server and a real Redis Cluster:
// FEEDLINE_TEST_REDIS (a redis:// URL), else a private redis-server started
// here, and FEEDLINE_TEST_REDIS_CLUSTER (a redis+cluster:// URL), else a
// private cluster of three masters started here (but under CI=true an unset
// variable fails the run); without redis-server they skip. Each test keeps
// its keys under a random prefix, so shared ones work.
var (
	testURL           string
	skipReason        string
	clusterURL        string
	clusterSkipReason string
	serverBin         string // redis-server, when on PATH
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	serverBin, _ = exec.LookPath("redis-server")
	ci := os.Getenv("CI") == "true"
	testURL = os.Getenv(redistest.ServerEnv)
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
		case ci:
			fmt.Fprintf(os.Stderr, "redisfeed tests: %s is unset and redis-server is not on PATH; CI must run them\n", redistest.ServerEnv)
			return 1
		default:
			skipReason = redistest.ServerEnv + " is unset and redis-server is not on PATH"
		}
	}
	clusterURL = os.Getenv(redistest.ClusterEnv)
	if clusterURL == "" {
		switch {
		case ci:
			fmt.Fprintf(os.Stderr, "redisfeed tests: %s is unset; .ci/run starts a Redis Cluster (make services)\n", redistest.ClusterEnv)
			return 1
		case serverBin != "":
			dir, err := os.MkdirTemp("", "feedline-redis-cluster-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cl, err := redistest.StartCluster(ctx, dir, redistest.ClusterOptions{})
			cancel()
			if err != nil {
				fmt.Fprintf(os.Stderr, "redisfeed tests: start private cluster: %v\n", err)
				return 1
			}
			defer cl.Stop()
			clusterURL = cl.URL
		default:
			clusterSkipReason = redistest.ClusterEnv + " is unset and redis-server is not on PATH"
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

// needCluster skips the test when no Redis Cluster is available.
func needCluster(t testing.TB) {
	t.Helper()
	if clusterURL == "" {
		t.Skip("no Redis Cluster: " + clusterSkipReason)
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

// openStore opens a Store on the single server whose keys live under a
// fresh random prefix, deleted when the test ends.
func openStore(t testing.TB) *Store {
	t.Helper()
	needServer(t)
	return openStoreAt(t, testURL)
}

// openClusterStore is openStore on the Redis Cluster.
func openClusterStore(t testing.TB) *Store {
	t.Helper()
	needCluster(t)
	return openStoreAt(t, clusterURL)
}

// backends runs test on the single server and on the cluster.
func backends(t *testing.T, test func(t *testing.T, open func(testing.TB) *Store)) {
	t.Run("redis", func(t *testing.T) { test(t, openStore) })
	t.Run("cluster", func(t *testing.T) { test(t, openClusterStore) })
}

func openStoreAt(t testing.TB, url string, opts ...Option) *Store {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "feedline-test-" + hex.EncodeToString(b[:]) + ":"
	s, err := Open(t.Context(), url, append([]Option{WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := DeleteKeys(ctx, s.rdb, prefix+"*"); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
		s.Close()
	})
	return s
}

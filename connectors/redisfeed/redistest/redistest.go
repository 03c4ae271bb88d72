// Package redistest gives tests real Redis: the shared servers `make
// services` starts (named by FEEDLINE_TEST_* variables), or a Redis Cluster
// of redis-server processes started for one test on free loopback ports,
// whose nodes the test may kill and restart.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The variables naming the shared servers (README, "Tests against real
// servers").
const (
	ServerEnv  = "FEEDLINE_TEST_REDIS"         // redis://host:port/db
	ClusterEnv = "FEEDLINE_TEST_REDIS_CLUSTER" // redis+cluster://host:port,host:port
)

// URL answers the URL in the variable env; unset, the test fails under
// CI=true (CI starts every engine) and skips otherwise.
func URL(tb testing.TB, env string) string {
	tb.Helper()
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set; .ci/run starts the servers (make services)", env)
		}
		tb.Skipf("%s is not set (make services starts the servers)", env)
	}
	return u
}

// Binaries finds redis-server and redis-cli; missing, the test fails under
// CI=true and skips otherwise.
func Binaries(tb testing.TB) {
	tb.Helper()
	if err := lookBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
}

func lookBinaries() error {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not on PATH (apt-get install redis-server): %w", bin, err)
		}
	}
	return nil
}

// ClusterOptions shapes a cluster of one's own.
type ClusterOptions struct {
	Masters  int // at least 3 (redis-cli's minimum); default 3
	Replicas int // replicas per master
	// NodeTimeout is cluster-node-timeout: how long a master may be silent
	// before the others mark it failed and a replica takes over; default 1s.
	NodeTimeout time.Duration
	// AppendOnly keeps each node's writes in an append-only file, synced
	// before each reply (appendfsync always: with everysec a write may wait
	// in memory while an fsync runs), so a killed master restarted in its
	// place comes back with every write it acknowledged.
	AppendOnly bool
}

// Cluster is a Redis Cluster of redis-server processes on loopback.
type Cluster struct {
	URL   string // redis+cluster:// naming every node
	Nodes []*Node
}

// Node is one redis-server process of a Cluster.
type Node struct {
	Addr string // 127.0.0.1:port
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan error
}

// StartCluster starts a cluster under dir and waits until it serves every
// slot; Stop ends it.
func StartCluster(ctx context.Context, dir string, o ClusterOptions) (*Cluster, error) {
	if err := lookBinaries(); err != nil {
		return nil, err
	}
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = time.Second
	}
	c := &Cluster{}
	var addrs []string
	for i := range o.Masters * (1 + o.Replicas) {
		n, err := startNode(ctx, filepath.Join(dir, fmt.Sprintf("node-%d", i)), o)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	c.URL = "redis+cluster://" + strings.Join(addrs, ",")
	if err := c.WaitServing(ctx, 30*time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// StartClusterT is StartCluster for one test: in a temporary directory,
// stopped when the test ends; it skips (fails under CI) without redis-server.
func StartClusterT(tb testing.TB, o ClusterOptions) *Cluster {
	tb.Helper()
	Binaries(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, tb.TempDir(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c
}

func startNode(ctx context.Context, dir string, o ClusterOptions) (*Node, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	bus, err := freePort()
	if err != nil {
		return nil, err
	}
	appendOnly := "no"
	if o.AppendOnly {
		appendOnly = "yes"
	}
	n := &Node{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, args: []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", strconv.Itoa(bus),
		"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
		"--save", "", "--appendonly", appendOnly, "--appendfsync", "always", "--logfile", filepath.Join(dir, "server.log"),
		// A replica syncs at once instead of waiting for others to join in.
		"--repl-diskless-sync-delay", "0",
	}}
	return n, n.start(ctx)
}

func (n *Node) start(ctx context.Context) error {
	n.cmd = exec.Command("redis-server", n.args...)
	n.cmd.Dir = n.dir
	if err := n.cmd.Start(); err != nil {
		return err
	}
	n.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(n.cmd, n.done)
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := n.Do(ctx, "ping").Err()
		if err == nil {
			return nil
		}
		select {
		case exitErr := <-n.done:
			n.done <- exitErr
			log, _ := os.ReadFile(filepath.Join(n.dir, "server.log"))
			return fmt.Errorf("redis-server %s exited (%v): %s", n.Addr, exitErr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server %s did not answer within 15s: %w", n.Addr, err)
		}
	}
}

// Do runs one command on this node alone.
func (n *Node) Do(ctx context.Context, args ...any) *redis.Cmd {
	c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	defer c.Close()
	return c.Do(ctx, args...)
}

// Alive reports whether the process runs.
func (n *Node) Alive() bool {
	select {
	case err := <-n.done:
		n.done <- err
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL and waits until it is gone.
func (n *Node) Kill() error {
	if !n.Alive() {
		return nil
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	err := <-n.done
	n.done <- err
	return nil
}

// Restart starts the node again on its port, with its directory: its
// cluster identity (nodes.conf) and, with AppendOnly, its data.
func (n *Node) Restart(ctx context.Context) error {
	if n.Alive() {
		return fmt.Errorf("redis-server %s still runs", n.Addr)
	}
	return n.start(ctx)
}

// Role is "master" or "slave", as the node itself says.
func (n *Node) Role(ctx context.Context) (string, error) {
	info, err := n.Do(ctx, "info", "replication").Text()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: INFO replication has no role", n.Addr)
}

// Masters are the running nodes that say they are masters.
func (c *Cluster) Masters(ctx context.Context) ([]*Node, error) {
	var out []*Node
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		role, err := n.Role(ctx)
		if err != nil {
			return nil, err
		}
		if role == "master" {
			out = append(out, n)
		}
	}
	return out, nil
}

// WaitServing waits until every running node says cluster_state:ok with
// every slot served, and every running replica is in sync with its master
// (a replica that never synced cannot take over).
func (c *Cluster) WaitServing(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := c.serving(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not serving after %s: %w", within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) serving(ctx context.Context) error {
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		info, err := n.Do(ctx, "cluster", "info").Text()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			f := strings.Fields(info)
			return fmt.Errorf("%s: %s", n.Addr, strings.Join(f[:min(4, len(f))], " "))
		}
		repl, err := n.Do(ctx, "info", "replication").Text()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("replica %s is not in sync with its master yet", n.Addr)
		}
	}
	return nil
}

// Logs are the last lines of every node's log, to show why a test failed.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		log, _ := os.ReadFile(filepath.Join(n.dir, "server.log"))
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		fmt.Fprintf(&b, "--- %s (alive: %v)\n%s\n", n.Addr, n.Alive(), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	return b.String()
}

// Stop kills every node.
func (c *Cluster) Stop() {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Kill())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "redistest: stop cluster: %v\n", err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

package redisfeed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// URL schemes: one server, or a Redis Cluster named by one or more of its
// nodes (the client finds the others). The "s" forms use TLS.
const (
	schemeServer     = "redis"
	schemeServerTLS  = "rediss"
	schemeCluster    = "redis+cluster"
	schemeClusterTLS = "rediss+cluster"
)

// target is what a URL names: a single server or a cluster.
type target struct {
	server  *redis.Options
	cluster *redis.ClusterOptions
}

// parseURL reads
//
//	redis://[user:password@]host:port[/db][?option=value...]           one server
//	redis+cluster://[user:password@]host:port[,host:port...][?option=value...]  a cluster
//
// with go-redis's query options (dial_timeout, pool_size, ...; for a
// cluster those of redis.ParseClusterURL). Errors never show the password.
func parseURL(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("redisfeed: URL is not valid (%v); want redis://host:port/db or redis+cluster://host:port,host:port", parseErr(err))
	}
	shown := u.Redacted()
	switch u.Scheme {
	case schemeServer, schemeServerTLS:
		if strings.Contains(u.Host, ",") {
			return target{}, fmt.Errorf("redisfeed: URL %s names several servers; name a Redis Cluster as %s+cluster://%s", shown, u.Scheme, u.Host)
		}
		o, err := redis.ParseURL(raw)
		if err != nil {
			return target{}, fmt.Errorf("redisfeed: URL %s: %w", shown, err)
		}
		return target{server: o}, nil
	case schemeCluster, schemeClusterTLS:
		o, err := parseClusterURL(u)
		if err != nil {
			return target{}, fmt.Errorf("redisfeed: URL %s: %w", shown, err)
		}
		return target{cluster: o}, nil
	default:
		return target{}, fmt.Errorf("redisfeed: URL %s: scheme %q; want redis:// or rediss:// for one server, redis+cluster:// or rediss+cluster:// for a Redis Cluster", shown, u.Scheme)
	}
}

// parseClusterURL turns the node list into go-redis's cluster URL form
// (the first node as host, the others as addr parameters).
func parseClusterURL(u *url.URL) (*redis.ClusterOptions, error) {
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("database %q: a Redis Cluster has only database 0", p)
	}
	q := u.Query()
	if q.Has("addr") {
		return nil, errors.New("list the cluster's nodes comma-separated in the host part, not as addr parameters")
	}
	var addrs []string
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return nil, errors.New("a node address is empty; want host:port,host:port")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// A bare host takes the default port, as in a redis:// URL.
			host, port = h, "6379"
		}
		if host == "" || port == "" {
			return nil, fmt.Errorf("node %q: want host:port", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	base := url.URL{Scheme: strings.TrimSuffix(u.Scheme, "+cluster"), User: u.User, Host: addrs[0], RawQuery: q.Encode()}
	return redis.ParseClusterURL(base.String())
}

// parseErr is why a URL did not parse, without the URL (and its password).
func parseErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// CheckURL refuses a URL Open would refuse before connecting, so a
// configuration can be checked at start-up.
func CheckURL(url string) error {
	_, err := parseURL(url)
	return err
}

// NewClient connects a go-redis client to what url names, in the forms
// Open reads: a *redis.Client for one server, a *redis.ClusterClient for a
// cluster. For tools and tests that need commands the store does not offer.
func NewClient(url string) (redis.UniversalClient, error) {
	t, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	return t.client(), nil
}

func (t target) client() redis.UniversalClient {
	if t.cluster != nil {
		return redis.NewClusterClient(t.cluster)
	}
	return redis.NewClient(t.server)
}

// describe names the server or the cluster's seed nodes, for errors.
func (t target) describe() string {
	if t.cluster != nil {
		return "the Redis Cluster at " + strings.Join(t.cluster.Addrs, ",")
	}
	return t.server.Addr
}

// EachMaster calls fn with every master of c at once (the one server when
// c is not a cluster) and answers the first error: keyless commands such
// as SCAN, DBSIZE, FLUSHDB or INFO see one node only.
func EachMaster(ctx context.Context, c redis.UniversalClient, fn func(ctx context.Context, master *redis.Client) error) error {
	switch c := c.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("redisfeed: EachMaster: unsupported client %T", c)
	}
}

// DeleteKeys removes every key matching the SCAN pattern match from every
// master of c and answers how many it removed. Keys go one to a command,
// so keys of different cluster slots never meet in one.
func DeleteKeys(ctx context.Context, c redis.UniversalClient, match string) (int, error) {
	var (
		mu      sync.Mutex
		deleted int
	)
	err := EachMaster(ctx, c, func(ctx context.Context, m *redis.Client) error {
		iter := m.Scan(ctx, 0, match, 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			pipe := m.Pipeline()
			for _, k := range batch {
				pipe.Unlink(ctx, k)
			}
			_, err := pipe.Exec(ctx)
			mu.Lock()
			deleted += len(batch)
			mu.Unlock()
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	})
	return deleted, err
}

// Package pipeline is the runtime every stage shares: the event bus
// (embedded or outside NATS JetStream), declaring the streams and buckets
// its caller names, publishing events with de-duplication, and the stage
// runner with retry, dead-letter, metrics and graceful drain. It knows no
// application's streams: package topology holds feedline's.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BusConfig says where the event log lives.
type BusConfig struct {
	// URL of an outside NATS server; empty embeds one.
	URL string
	// Auth signs in to the outside server. When it is empty and every URL
	// is on this machine, the credentials of DataDir's embedded server are
	// used, so workers on the same data directory join without settings.
	Auth ClientAuth
	// InboxPrefix of reply subjects ("_INBOX" when empty). A NATS user per
	// service gets its own, so it may subscribe to its replies only.
	InboxPrefix string
	// DataDir holds the embedded server's JetStream files and credentials.
	DataDir string
	// Listen is the embedded server's client address ("127.0.0.1:4222");
	// empty picks a free loopback port. In-process clients never use it.
	Listen string
	// Replicas for streams and buckets (3 on a NATS cluster).
	Replicas int
	Logger   *slog.Logger
}

// MaxPayload of the embedded server: raw batches carry up to ~1 MiB rows.
const MaxPayload = 8 << 20

// Bus is a connection to JetStream, and the embedded server when there is one.
type Bus struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	server   *server.Server
	replicas int
	log      *slog.Logger
}

// Connect embeds a JetStream server (or dials cfg.URL) and connects to it.
func Connect(ctx context.Context, cfg BusConfig) (*Bus, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{replicas: max(cfg.Replicas, 1), log: log}
	opts := []nats.Option{
		nats.Name("feedline"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
		// A refused publish or subscription arrives here, not at the caller
		// (whose request times out): say which, so a missing right is found.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats refused an operation", "err", err, "subject", sub.Subject)
				return
			}
			log.Error("nats refused an operation", "err", err)
		}),
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	url := cfg.URL
	if url == "" {
		creds, err := embeddedCredentials(dataDir(cfg))
		if err != nil {
			return nil, err
		}
		ns, err := startEmbedded(cfg, creds)
		if err != nil {
			return nil, err
		}
		b.server = ns
		opts = append(opts, nats.InProcessServer(ns), nats.UserInfo(creds.User, creds.Password))
		url = ns.ClientURL()
	} else {
		auth, err := clientAuth(cfg, log)
		if err != nil {
			return nil, err
		}
		more, err := auth.options()
		if err != nil {
			return nil, err
		}
		opts = append(opts, more...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		if why := unreachable(url, err); why != "" {
			return nil, fmt.Errorf("connect to nats %s: %w (%s)", redact(url), err, why)
		}
		return nil, fmt.Errorf("connect to nats %s: %w", redact(url), err)
	}
	b.nc = nc
	// An acknowledgement lost with a NATS node fails its flight after
	// publishAttempt instead of leaving it waiting.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAttempt))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	return b, nil
}

func dataDir(cfg BusConfig) string {
	if cfg.DataDir == "" {
		return "data"
	}
	return cfg.DataDir
}

// clientAuth is how to sign in to an outside server: as configured, else,
// for a server on this machine, as the data directory's embedded server
// says. Those credentials are never sent to another machine.
func clientAuth(cfg BusConfig, log *slog.Logger) (ClientAuth, error) {
	auth := cfg.Auth
	if err := auth.Check(cfg.URL); err != nil {
		return auth, err
	}
	if len(auth.identities()) > 0 || len(urlsWithUser(cfg.URL)) > 0 || cfg.DataDir == "" || !allLoopback(cfg.URL) {
		return auth, nil
	}
	creds, err := ReadEmbeddedCredentials(cfg.DataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return auth, nil
	case err != nil:
		return auth, err
	}
	log.Debug("signing in to nats with the embedded server's credentials", "file", EmbeddedCredentialsPath(cfg.DataDir))
	auth.User, auth.Password = creds.User, creds.Password
	return auth, nil
}

// redact hides passwords and tokens of URLs meant for logs and errors.
func redact(urls string) string {
	var out []string
	for _, u := range splitURLs(urls) {
		out = append(out, u.Redacted())
	}
	if len(out) == 0 {
		return urls
	}
	return strings.Join(out, ",")
}

func startEmbedded(cfg BusConfig, creds EmbeddedCredentials) (*server.Server, error) {
	dir := dataDir(cfg)
	host, port := "127.0.0.1", -1
	if cfg.Listen != "" {
		h, p, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", p, err)
		}
		host, port = h, n
	}
	opts := &server.Options{
		ServerName: "feedline",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dir, "jetstream"),
		MaxPayload: MaxPayload,
		// Stages pull at most 8–32 MiB per fetch over the one in-process
		// connection; this is the server's default, stated because it matters.
		MaxPending: 64 << 20,
		NoSigs:     true,
		NoLog:      true,
		// Any local process can reach the port; only holders of the data
		// directory's credentials may use it.
		Users: []*server.User{{Username: creds.User, Password: creds.Password}},
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats did not become ready in 30s")
	}
	return ns, nil
}

// JetStream is the bus's JetStream handle, for what is NATS-backed by
// design: the stores of connectors/natskv, which keep streams and buckets
// of their own and read them in ways the runtime does not (batched direct
// gets, ordered reads of one upload's issues), and the operator tools in
// cmd. Stages and the API use the bus's methods.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Publisher publishes on the bus and waits for each acknowledgement.
func (b *Bus) Publisher() JetStreamPublisher { return JetStreamPublisher{js: b.js} }

// Embedded reports whether the bus runs its own server.
func (b *Bus) Embedded() bool { return b.server != nil }

// ClientURL is where other processes reach the embedded server (or the
// server connected to), without credentials: it is fit for logs.
func (b *Bus) ClientURL() string {
	if b.server != nil {
		return b.server.ClientURL()
	}
	return b.nc.ConnectedUrlRedacted()
}

// Ready checks that JetStream answers.
func (b *Bus) Ready(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("nats is not ready: not connected (%s)", b.nc.Status())
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("nats is not ready: JetStream does not answer (on a cluster: is a majority of its nodes up?): %w", err)
	}
	return nil
}

// unreachable says, for a connection that failed before signing in, what
// is at each address: nothing, or something that is not a NATS server.
// It is empty for a refused sign-in, whose error says enough.
func unreachable(urls string, err error) string {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
		return ""
	}
	var why []string
	for _, u := range splitURLs(urls) {
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "4222")
		}
		conn, derr := net.DialTimeout("tcp", addr, time.Second)
		if derr != nil {
			why = append(why, fmt.Sprintf("%s: nothing answers (%v); is the server up and the address right?", addr, derr))
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		greeting := make([]byte, 5)
		n, _ := io.ReadFull(conn, greeting)
		_ = conn.Close()
		if string(greeting[:n]) != "INFO " {
			why = append(why, fmt.Sprintf("%s answers but is not a NATS server (no INFO greeting): the monitoring port or another service?", addr))
		}
	}
	return strings.Join(why, "; ")
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.nc != nil {
		_ = b.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !b.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.nc.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
		b.server = nil
	}
}

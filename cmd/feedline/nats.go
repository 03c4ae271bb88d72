package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"feedline/pipeline"
	"feedline/topology"
)

// parseNATSAuth reads how to sign in to an outside NATS, and whether to
// declare streams and buckets; Validate refuses what cannot work.
func parseNATSAuth(cfg *serveConfig, get func(string) string, values map[string]*string) error {
	cfg.NATSAuth = pipeline.ClientAuth{
		User:      get("FEEDLINE_NATS_USER"),
		Password:  *values["FEEDLINE_NATS_PASSWORD"],
		Token:     *values["FEEDLINE_NATS_TOKEN"],
		NKeyFile:  get("FEEDLINE_NATS_NKEY"),
		CredsFile: get("FEEDLINE_NATS_CREDS"),
		CAFile:    get("FEEDLINE_NATS_CA"),
		CertFile:  get("FEEDLINE_NATS_CERT"),
		KeyFile:   get("FEEDLINE_NATS_KEY"),
	}
	cfg.NATSInbox = get("FEEDLINE_NATS_INBOX")
	declare, err := strconv.ParseBool(get("FEEDLINE_NATS_DECLARE"))
	if err != nil {
		return fmt.Errorf("FEEDLINE_NATS_DECLARE %q: want true or false", get("FEEDLINE_NATS_DECLARE"))
	}
	cfg.NATSNoDeclare = !declare
	return nil
}

// connectBus connects to url (empty embeds a server) as cfg says.
func connectBus(ctx context.Context, cfg serveConfig, url string) (*pipeline.Bus, error) {
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{
		URL: url, Auth: cfg.NATSAuth, InboxPrefix: cfg.NATSInbox, DataDir: cfg.DataDir, Listen: cfg.NATSListen, Replicas: cfg.NATSReplicas, Logger: cfg.Log,
	})
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, fmt.Errorf("%w; sign in as a NATS user (FEEDLINE_NATS_USER and FEEDLINE_NATS_PASSWORD, FEEDLINE_NATS_TOKEN, --nats-nkey or --nats-creds), "+
			"or, for the server a feedline serve embeds, give --data of that serve (`feedline nats credentials` prints its credentials)", err)
	}
	return bus, err
}

// connectTool connects a one-off command to the running system: the
// configured NATS, else the embedded server's client address.
func connectTool(ctx context.Context, cfg serveConfig) (*pipeline.Bus, error) {
	url := cfg.NATS
	if url == "" {
		url = "nats://" + cfg.NATSListen
	}
	bus, err := connectBus(ctx, cfg, url)
	if err != nil {
		return nil, fmt.Errorf("is feedline serve running? %w", err)
	}
	return bus, nil
}

// declare creates or updates the streams and buckets, unless this process
// runs as a NATS user that may only use them.
func declare(ctx context.Context, cfg serveConfig, bus *pipeline.Bus) error {
	if cfg.NATSNoDeclare {
		return nil
	}
	return declareAll(ctx, bus)
}

// declareAll creates or updates the pipeline's streams and buckets, the
// ISSUES stream of upload issue lists and the sources bucket of fetched feeds.
func declareAll(ctx context.Context, bus *pipeline.Bus) error {
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		return err
	}
	return bus.Declare(ctx, topology.Stores())
}

// undeclaredHint says what to do when a stream or bucket a process without
// the right to declare them relies on is missing.
func undeclaredHint(cfg serveConfig, err error) error {
	if err != nil && cfg.NATSNoDeclare && (errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound)) {
		return fmt.Errorf("%w (FEEDLINE_NATS_DECLARE is false: run `feedline nats declare` as a NATS user allowed to create streams first)", err)
	}
	return err
}

const natsUsage = `usage:
  feedline nats credentials [--data DIR] [--nats-listen ADDR] [--format env|url|context]
  feedline nats declare [--nats URL ...]`

// natsCmd prints the embedded server's credentials or declares the
// streams and buckets.
func natsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(natsUsage)
	}
	switch args[0] {
	case "credentials":
		return natsCredentialsCmd(args[1:], stdout, stderr)
	case "declare":
		return natsDeclareCmd(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown nats command %q\n%s", args[0], natsUsage)
}

// natsCredentialsCmd prints how to reach the embedded server of a data
// directory: as environment variables the nats CLI reads (env), a URL with
// credentials for --nats (url), or a nats CLI context (context).
func natsCredentialsCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats credentials", flag.ContinueOnError)
	format := fs.String("format", "env", "env (NATS_URL, NATS_USER, NATS_PASSWORD), url (nats://user:password@host:port) or context (nats CLI context JSON)")
	cfg, err := parseSettings(fs, args, stderr)
	if err != nil {
		return err
	}
	if cfg.NATS != "" {
		return errors.New("FEEDLINE_NATS is set: an outside server's users are its own (deploy/nats/nats.conf in compose); this prints the credentials of the server feedline serve embeds")
	}
	creds, err := pipeline.ReadEmbeddedCredentials(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w (is --data the data directory of a feedline serve that has started once?)", err)
	}
	host, port, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return fmt.Errorf("nats-listen %q: %w", cfg.NATSListen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, port)
	switch *format {
	case "env":
		fmt.Fprintf(stdout, "export NATS_URL=nats://%s\nexport NATS_USER=%s\nexport NATS_PASSWORD=%s\n", addr, creds.User, creds.Password)
	case "url":
		fmt.Fprintf(stdout, "nats://%s:%s@%s\n", creds.User, creds.Password, addr)
	case "context":
		b, err := json.MarshalIndent(map[string]string{
			"description": "feedline, embedded JetStream of " + cfg.DataDir,
			"url":         "nats://" + addr,
			"user":        creds.User,
			"password":    creds.Password,
		}, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	default:
		return fmt.Errorf("--format %q: want env, url or context", *format)
	}
	return nil
}

// natsDeclareCmd creates or updates every stream and bucket, as the one
// NATS user of a deployment allowed to.
func natsDeclareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseSettings(flag.NewFlagSet("nats declare", flag.ContinueOnError), args, stderr)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := connectTool(ctx, cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	if err := declareAll(ctx, bus); err != nil {
		return err
	}
	var names []string
	for _, sc := range append(topology.Feedline().Streams, topology.Stores().Streams...) {
		names = append(names, sc.Name)
	}
	fmt.Fprintf(stdout, "declared on %s: streams %v, their buckets and the uploads object store (%d replicas)\n", bus.ClientURL(), names, cfg.NATSReplicas)
	return nil
}

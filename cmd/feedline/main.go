// Command feedline runs the pipeline (serve), pushes partner files (push),
// manages partners (partner add) and measures the whole path (bench).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `feedline — catalog ETL and a news feed on a JetStream backbone

Usage:
  feedline serve   [--data DIR] [--http ADDR] [--nats URL] [--stages LIST]   run stages and the API
  feedline worker  --stages LIST [--nats URL]                                 same as serve, for one stage set
  feedline partner add ID                                                     create a partner, print its key once
  feedline mapping set PARTNER FILE|-                                         set a partner's mapping (JSON)
  feedline mapping lint MAPPING.json --sample FILE [--json]                   check a mapping on a sample, offline: products, issues, counts
  feedline push FILE --partner P [--mode full|delta] [--format F] [--confirm] upload a file and follow it to the end
  feedline upload confirm|cancel UPLOAD_ID                                    apply or drop a held full upload
  feedline bench   [--rows N]                                                 catalog benchmark end to end on the embedded default
  feedline bench feed [--redis URL] [--out FILE]                              news-feed benchmark: fan-out, freshness, reads (wrk)
  feedline bench memory [--rows N] [--memory 1GiB]                            resident memory of serve, as its own process, uploading and restarting
  feedline dlq     [--stage S] [--limit N] [--data DIR | --nats URL]          list dead-letter entries
  feedline dlq replay --stage S [--data DIR | --nats URL]                     send a stage's dead letters back to it after a fix, each once
  feedline top     [--url http://HOST:PORT,...] [--once]                      live per-stage rate, lag, paused, dead letters (from /metrics)
  feedline tap     SUBJECT [--limit N] [--all] [--data DIR | --nats URL]      follow the messages on a subject as they pass
  feedline version                                                            print the version, VCS revision and Go version
  feedline token   --user U [--ttl 24h]                                       print a shopper token (FEEDLINE_TOKEN_KEY)
  feedline reindex --es-url URL [--nats URL]                                  rebuild the Elasticsearch index from the log, swap the alias
  feedline replay feeds --redis URL [--nats URL]                              rebuild the feed state in Redis from the log
  feedline compact [--data DIR | --nats URL]                                  compact the product log now (batches that could make news stay)
  feedline nats credentials [--data DIR] [--format env|url|context]          print how to sign in to the embedded NATS
  feedline nats declare [--nats URL]                                          create or update every stream and bucket

Commands that use NATS sign in to the embedded server of --data with the
credentials it generated (DIR/nats/credentials.json), and to --nats with
FEEDLINE_NATS_USER/_PASSWORD, _TOKEN, --nats-nkey or --nats-creds.

Every serve flag has a FEEDLINE_* variable; "feedline serve -h" lists them.
Clients read FEEDLINE_API (base URL) and FEEDLINE_API_KEY (partner key).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve", "worker":
		err = serveCmd(ctx, args[1:], stderr)
	case "partner":
		err = partnerCmd(ctx, args[1:], stdout)
	case "mapping":
		err = mappingCmd(ctx, args[1:], stdout)
	case "push":
		err = pushCmd(ctx, args[1:], stdout, stderr)
	case "upload":
		err = uploadCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = dlqCmd(ctx, args[1:], stdout, stderr)
	case "token":
		err = tokenCmd(ctx, args[1:], stdout, stderr)
	case "reindex":
		err = reindexCmd(ctx, args[1:], stdout, stderr)
	case "replay":
		err = replayCmd(ctx, args[1:], stdout, stderr)
	case "compact":
		err = compactCmd(ctx, args[1:], stdout, stderr)
	case "nats":
		err = natsCmd(ctx, args[1:], stdout, stderr)
	case "top":
		err = topCmd(ctx, args[1:], stdout, stderr)
	case "tap":
		err = tapCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		err = versionCmd(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "feedline: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "feedline %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// env returns the environment variable, or def when it is unset or empty.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

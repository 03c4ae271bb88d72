package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"feedline/connectors/natskv"
	"feedline/schemas"
	"feedline/stages/fanout"
	"feedline/stages/normalise"
	"feedline/topology"
)

// compactCmd runs one compaction pass of the product log now, beside the
// running system: its own catalog is rebuilt from the whole log and
// follows it while the pass runs. It sees no feed state, so every batch
// that could make shop news (any price drop) stays, and a start of any
// process from its checkpoints replays what it needs: only batches
// without news are gone, and compacted batches come after every
// checkpoint.
func compactCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	cfg, err := parseSettings(fs, args, stderr)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := connectTool(ctx, cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	kvUploads, err := bus.KV(ctx, topology.BucketUploads)
	if err != nil {
		return err
	}
	kvMappings, err := bus.KV(ctx, topology.BucketMappings)
	if err != nil {
		return err
	}
	norm, err := normalise.New(ctx, bus, natskv.Ledger{KV: kvUploads}, natskv.Mappings{KV: kvMappings}, bus.Publisher(), cfg.Log)
	if err != nil {
		return err
	}
	follow, stop := context.WithCancel(ctx)
	defer stop()
	norm.Follow(follow)
	msgs, bytes, err := bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		return err
	}
	pol := cfg.Feed
	pol.PriceDropPercent = 1
	res, err := norm.Compact(ctx, normalise.Compaction{News: func(ctx context.Context) func(*schemas.ProductBatch) (bool, error) {
		return (&fanout.Stage{Policy: pol}).NewsShown(ctx)
	}})
	if err != nil {
		return err
	}
	after, afterBytes, err := bus.StreamSize(ctx, topology.StreamProducts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d messages, %d bytes → %d messages, %d bytes; up to sequence %d, %d batches removed, %d compacted batches written\n",
		topology.StreamProducts, msgs, bytes, after, afterBytes, res.Horizon, res.Removed, res.Rewritten)
	return nil
}

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// restartRounds is how often each kind of restart is timed; they take
// turns, so a neighbour's load on a shared host weighs on both alike.
const restartRounds = 2

// restarts times restart → /readyz of the system whose data directory
// holds an uploaded catalog: from the whole log (checkpoints off, the
// baseline) and from the checkpoints its clean stop wrote. It returns the
// best time of each.
func restarts(ctx context.Context, l Launcher, dataDir string, log func(string, ...any)) (full, checkpointed time.Duration, err error) {
	for round := range restartRounds {
		for _, every := range []time.Duration{0, time.Minute} {
			d, err := restartToReady(ctx, l, dataDir, every)
			if err != nil {
				return 0, 0, err
			}
			kind := "from the whole log"
			best := &full
			if every > 0 {
				kind, best = "from checkpoints", &checkpointed
			}
			log("restart %d %s: ready in %s", round+1, kind, d.Round(time.Millisecond))
			if *best == 0 || d < *best {
				*best = d
			}
		}
	}
	return full, checkpointed, nil
}

// restartToReady starts a system on dataDir, with checkpoints every
// every (0: none, so the whole log is replayed), and answers how long it
// took until /readyz said ready; then it stops it cleanly.
func restartToReady(ctx context.Context, l Launcher, dataDir string, every time.Duration) (time.Duration, error) {
	start := time.Now()
	sys, err := l.Start(ctx, Run{DataDir: dataDir, AdminKey: "bench-admin", CheckpointEvery: every, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = sys.Stop(sctx)
	}()
	for {
		res, err := http.Get("http://" + sys.Addr() + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > 10*time.Minute {
			return 0, fmt.Errorf("not ready 10 minutes after the restart: %v", err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

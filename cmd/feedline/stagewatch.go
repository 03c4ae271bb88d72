package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
	"feedline/topology"
)

// consumerWatch implements api.StageWatch from the stages' durable
// consumers in JetStream, so an API in one process sees the backlog of
// stages running in others.
type consumerWatch struct {
	js jetstream.JetStream
}

// streamOf is the stream a stage an upload passes reads; a stage's durable
// consumer is named after it.
func streamOf(stage string) (string, bool) {
	switch stage {
	case "ingest":
		return topology.StreamUploads, true
	case "normalise":
		return topology.StreamRaw, true
	case "index":
		return topology.StreamProducts, true
	}
	return "", false
}

// recentlyActive is how long after its last delivery a consumer counts as
// having a worker: a worker fetches again within a second or two.
const recentlyActive = 5 * time.Second

func (w consumerWatch) Waiting(ctx context.Context, stage string) (schemas.Waiting, error) {
	out := schemas.Waiting{Stage: stage}
	stream, ok := streamOf(stage)
	if !ok {
		return out, fmt.Errorf("stage %q reads no upload's messages", stage)
	}
	cons, err := w.js.Consumer(ctx, stream, stage)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return out, nil // the stage has never run: its durable is made when it starts
	}
	if err != nil {
		return out, fmt.Errorf("consumer %s on %s: %w", stage, stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return out, fmt.Errorf("consumer %s on %s: %w", stage, stream, err)
	}
	out.Pending, out.InProgress = int64(info.NumPending), int64(info.NumAckPending)
	last := info.Delivered.Last
	out.Running = info.NumWaiting > 0 || info.NumAckPending > 0 || (last != nil && time.Since(*last) < recentlyActive)
	return out, nil
}

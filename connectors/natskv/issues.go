package natskv

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Issues reads upload issue lists from the stream of upload issues
// (topology.StreamIssues): normalise publishes one message per raw batch
// (parts of at most 1 MiB) on catalog.issues.<partner>.<upload>, and an
// upload's subject is read back with an ordered consumer, so a list of any
// length streams and never sits in memory whole.
type Issues struct {
	Stream jetstream.Stream
}

func (l Issues) name() string { return l.Stream.CachedInfo().Config.Name }

// Stored reports whether the stream holds any issue of the upload.
func (l Issues) Stored(ctx context.Context, partner, upload string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	subject := schemas.IssuesSubject(partner, upload)
	info, err := l.Stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", l.name(), err)
	}
	return info.State.Subjects[subject] > 0, nil
}

// Each calls fn with every issue of the upload stored when it started, in
// the order the batches were normalised, each part once however often it
// was delivered. Memory holds one fetch of messages (4 MiB; a part is at most 1 MiB), not the list. It stops
// at the first error fn returns, and returns it.
func (l Issues) Each(ctx context.Context, partner, upload string, fn func(schemas.Issue) error) error {
	cons, err := l.Stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.IssuesSubject(partner, upload)}})
	if err != nil {
		return fmt.Errorf("read the issues of upload %s: %w", upload, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the issues of upload %s: %w", upload, err)
	}
	if ci.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxBytes(4 << 20))
	if err != nil {
		return fmt.Errorf("read the issues of upload %s: %w", upload, err)
	}
	defer it.Stop()
	type partKey struct{ batch, part int }
	seen := map[partKey]bool{}
	for {
		m, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read the issues of upload %s: %w", upload, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read the issues of upload %s: %w", upload, err)
		}
		var b schemas.IssueBatch
		if err := json.Unmarshal(m.Data(), &b); err != nil {
			return fmt.Errorf("issues of upload %s at sequence %d: %w", upload, md.Sequence.Stream, err)
		}
		if k := (partKey{b.Batch, b.Part}); !seen[k] {
			seen[k] = true
			for _, i := range b.Issues {
				if err := fn(i); err != nil {
					return err
				}
			}
		}
		if md.NumPending == 0 {
			return nil
		}
	}
}

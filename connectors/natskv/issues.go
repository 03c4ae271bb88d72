package natskv

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// StreamIssues holds every issue of every upload: normalise publishes one
// message per raw batch (parts of at most 1 MiB) on
// catalog.issues.<partner>.<upload>, and the API reads an upload's subject
// back with an ordered consumer, so a list of any length streams and never
// sits in memory whole.
const StreamIssues = "ISSUES"

// IssueRetention is how long an upload's issue list is kept; its counts,
// in the upload record, stay.
const IssueRetention = 30 * 24 * time.Hour

// IssueStreamConfig is the ISSUES stream. Its duplicate window drops a
// batch's issues published again soon after a crash; readers skip a part
// they saw, for a redelivery after the window.
func IssueStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       StreamIssues,
		Subjects:   []string{schemas.SubjectIssues + ".>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     IssueRetention,
		Duplicates: 20 * time.Minute,
		Replicas:   max(replicas, 1),
		MaxMsgSize: 8 << 20,
	}
}

// DeclareIssues creates or updates the ISSUES stream.
func DeclareIssues(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := js.CreateOrUpdateStream(ctx, IssueStreamConfig(replicas)); err != nil {
		return fmt.Errorf("declare stream %s: %w", StreamIssues, err)
	}
	return nil
}

// Issues reads upload issue lists from the ISSUES stream.
type Issues struct {
	JS jetstream.JetStream
}

// Stored reports whether the stream holds any issue of the upload.
func (l Issues) Stored(ctx context.Context, partner, upload string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	st, err := l.JS.Stream(ctx, StreamIssues)
	if err != nil {
		return false, fmt.Errorf("open stream %s: %w", StreamIssues, err)
	}
	subject := schemas.IssuesSubject(partner, upload)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", StreamIssues, err)
	}
	return info.State.Subjects[subject] > 0, nil
}

// Each calls fn with every issue of the upload stored when it started, in
// the order the batches were normalised, each part once however often it
// was delivered. Memory holds one fetch of messages (4 MiB; a part is at most 1 MiB), not the list. It stops
// at the first error fn returns, and returns it.
func (l Issues) Each(ctx context.Context, partner, upload string, fn func(schemas.Issue) error) error {
	st, err := l.JS.Stream(ctx, StreamIssues)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", StreamIssues, err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.IssuesSubject(partner, upload)}})
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

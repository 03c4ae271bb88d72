package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"feedline/schemas"
)

// HeaderReplayFor addresses a message sent back from the dead letters to
// the one stage that gave up on it; every other stage reading the same
// stream acknowledges it unhandled, having handled the original already.
const HeaderReplayFor = "Feedline-Replay-For"

// addressedElsewhere says m is a replayed dead letter meant for another stage.
func addressedElsewhere(m *Message, stage string) bool {
	to := m.Metadata.Get(HeaderReplayFor)
	return to != "" && to != stage
}

// DeadLetterReplay says what ReplayDeadLetters did.
type DeadLetterReplay struct {
	Replayed int // sent back to the stage's input and removed from the dead letters
	// Kept are entries that are not whole messages (one product a backend
	// refused within a batch it handled): they stay, to be fixed at the source.
	Kept int
}

// ReplayDeadLetters sends every message stage dead-lettered (on dlq.<stage>
// of stream) back to the subject it came from, with its metadata, addressed
// to stage alone, then removes the entry. Each is sent once: its message
// id is derived from the entry, so a replay cut short and run again
// publishes nothing twice, and a removed entry is never seen again.
func (b *Bus) ReplayDeadLetters(ctx context.Context, stream, stage string) (DeadLetterReplay, error) {
	var res DeadLetterReplay
	type entry struct {
		seq uint64
		d   schemas.DeadLetter
	}
	var entries []entry
	_, err := b.Replay(ctx, stream, schemas.Subject(schemas.SubjectDLQ, stage), func(m *Message) error {
		var d schemas.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return fmt.Errorf("dead letter %d of %s cannot be read: %w", m.Sequence, stage, err)
		}
		entries = append(entries, entry{m.Sequence, d})
		return nil
	})
	if err != nil {
		return res, err
	}
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return res, fmt.Errorf("open %s: %w", stream, err)
	}
	pub := b.Publisher()
	for _, e := range entries {
		if e.d.Sequence == 0 || e.d.Subject == "" {
			res.Kept++
			continue
		}
		md := Metadata{}
		for k, v := range e.d.Headers {
			// NATS's own headers (the original message id) would make the
			// stream drop it as the duplicate it is.
			if !strings.HasPrefix(k, "Nats-") {
				md[k] = v
			}
		}
		md[HeaderReplayFor] = stage
		out := Outgoing{Subject: e.d.Subject, MsgID: schemas.MsgID("dlq-replay", stage, e.seq), Data: e.d.Payload, Metadata: md}
		if _, err := pub.Publish(ctx, out); err != nil {
			return res, fmt.Errorf("replay dead letter %d of %s to %s: %w", e.seq, stage, e.d.Subject, err)
		}
		if err := st.DeleteMsg(ctx, e.seq); err != nil {
			return res, fmt.Errorf("dead letter %d of %s was sent back but stays listed: %w", e.seq, stage, err)
		}
		res.Replayed++
	}
	return res, nil
}

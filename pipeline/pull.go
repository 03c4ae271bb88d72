package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// A stage pulls its batches with its own requests rather than jetstream's
// Fetch. A replicated consumer (R3) sends a delivery only once its delivered
// state has a quorum, but the status that ends a pull ("409 Batch
// Completed", "409 Message Size Exceeds MaxBytes") at once: the status
// overtakes the messages. Fetch ends the batch at the first status and drops
// its subscription, so those messages reach nobody, come back after the ack
// wait and are lost the same way again: on a NATS cluster a stage never got
// a message. The puller keeps one subscription for the stage's life, so a
// delivery that arrives after its request ended is handled with the next
// batch, and it waits for as many messages as the server says it sent.

// Statuses the server answers a pull request with.
var (
	// errNoResponders: nobody serves the consumer: it has no leader while
	// the cluster elects one, or it is gone.
	errNoResponders = errors.New("no responders: the consumer has no leader (a NATS node is down or being elected) or is gone")
	// errConsumerDeleted: the consumer was deleted while a pull waited.
	errConsumerDeleted = errors.New("the consumer was deleted")
)

// pullGrace is how long after its expiry a pull waits for an answer (and
// for deliveries the server reported but that are still on their way)
// before the stage asks again.
const pullGrace = 2 * time.Second

// pullRequest is the body of $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>.
type pullRequest struct {
	Batch    int           `json:"batch"`
	MaxBytes int           `json:"max_bytes,omitempty"`
	Expires  time.Duration `json:"expires,omitempty"`
}

// puller takes batches from one durable pull consumer.
type puller struct {
	nc    *nats.Conn
	next  string // the consumer's pull subject
	inbox string // request n is answered on inbox.<n>
	sub   *nats.Subscription
	n     uint64
}

func newPuller(nc *nats.Conn, stream, consumer string) (*puller, error) {
	p := &puller{nc: nc, next: "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer, inbox: nc.NewInbox()}
	sub, err := nc.SubscribeSync(p.inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("subscribe to the replies of consumer %s on %s: %w", consumer, stream, err)
	}
	// Each request bounds what the server sends; a limit here would only
	// drop deliveries, which then wait out the ack wait.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	p.sub = sub
	return p, nil
}

// close hands back what arrived after the last batch, so another worker
// takes it at once rather than after the ack wait.
func (p *puller) close() {
	for {
		m, err := p.sub.NextMsg(10 * time.Millisecond)
		if err != nil {
			break
		}
		if isDelivery(m) {
			_ = m.Nak()
		}
	}
	_ = p.sub.Unsubscribe()
}

// pull asks for up to n messages and maxBytes (0: no byte limit), waiting up
// to wait for them, and returns what arrived: this request's deliveries and
// any of an earlier request that came late. An empty answer is no error.
func (p *puller) pull(ctx context.Context, n, maxBytes int, wait time.Duration) ([]*nats.Msg, error) {
	if n == 1 {
		maxBytes = 0 // one message always fits, however large
	}
	p.n++
	reply := p.inbox + "." + strconv.FormatUint(p.n, 10)
	body, err := json.Marshal(pullRequest{Batch: n, MaxBytes: maxBytes, Expires: max(wait, time.Millisecond)})
	if err != nil {
		return nil, err
	}
	if err := p.nc.PublishRequest(p.next, reply, body); err != nil {
		return nil, fmt.Errorf("pull request: %w", err)
	}
	deadline := time.Now().Add(wait + pullGrace)
	var out []*nats.Msg
	size := 0
	expect := -1 // deliveries the server reported for this request
	for {
		if len(out) >= n || (maxBytes > 0 && size >= maxBytes) || (expect >= 0 && len(out) >= expect) {
			return out, nil
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		m, err := p.sub.NextMsgWithContext(wctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return out, ctx.Err()
		case errors.Is(err, nats.ErrNoResponders):
			// The 503 status: the subscription reports it as an error.
			return out, errNoResponders
		case err != nil:
			// No answer by the deadline: the request was lost with a node
			// or a leader; the next one goes to whoever serves now.
			return out, nil
		case isDelivery(m):
			out = append(out, m)
			size += m.Size()
			continue
		case m.Subject != reply:
			continue // a status that ends an earlier request
		}
		status, desc := m.Header.Get("Status"), m.Header.Get("Description")
		lower := strings.ToLower(desc)
		// What the request delivered: n less what it left pending.
		sent := len(out)
		if pending, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages")); err == nil {
			sent = n - pending
		}
		switch {
		case status == "100":
			// An idle heartbeat or flow control.
		case status == "404" || status == "408":
			// Expired or nothing there, sent after the deliveries.
			expect = sent
		case status == "409" && (strings.Contains(lower, "batch completed") || strings.Contains(lower, "exceeds maxbytes")):
			// Deliveries of a replicated consumer may still be on their way.
			expect = sent
		case status == "409" && strings.Contains(lower, "consumer deleted"):
			return out, errConsumerDeleted
		case status == "409" && (strings.Contains(lower, "leadership change") || strings.Contains(lower, "server shutdown")):
			return out, nil // the next request goes to the new leader
		case status == "503":
			return out, errNoResponders
		default:
			return out, fmt.Errorf("pull request refused: %s %s", status, desc)
		}
	}
}

// isDelivery tells a message of the stream from a status: only a delivery
// carries an ack subject.
func isDelivery(m *nats.Msg) bool { return strings.HasPrefix(m.Reply, "$JS.ACK.") }

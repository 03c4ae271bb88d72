package bench

import (
	"fmt"
	"strings"
)

// Validate checks the replicas and that the credentials suit the URLs.
func (n NATS) Validate() error {
	if n.Replicas < 1 || n.Replicas > 5 {
		return fmt.Errorf("--nats-replicas %d: want 1 to 5", n.Replicas)
	}
	if err := n.Auth.Check(n.URLs); err != nil {
		return fmt.Errorf("bench --nats: %w (set FEEDLINE_NATS_PASSWORD)", err)
	}
	return nil
}

// name says where a run is, for the report: "NATS (3 nodes, R3)".
func (n NATS) name() string {
	return fmt.Sprintf("NATS (%d nodes, R%d)", len(strings.Split(n.URLs, ",")), n.Replicas)
}

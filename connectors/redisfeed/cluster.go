package redisfeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"feedline/schemas"
)

// hashSlots is how many hash slots a Redis Cluster has.
const hashSlots = "16384"

// clusterServes checks every master the cluster lists: each must answer
// and see every hash slot assigned to a master that has not failed. A
// master killed without a replica to take over shows as one that does not
// answer, then (once the others mark it failed) as failed slots.
func (s *Store) clusterServes(ctx context.Context) error {
	var (
		mu   sync.Mutex
		errs []error
	)
	err := s.cluster.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if err := masterServes(ctx, m); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		// No node told the client the cluster's layout.
		if strings.Contains(err.Error(), "cluster support disabled") {
			return fmt.Errorf("it is not a Redis Cluster (%w); name one server as redis://host:port/db", err)
		}
		return classify(ctx, err)
	}
	// Sorted, so /readyz says the same thing twice in a row.
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func masterServes(ctx context.Context, m *redis.Client) error {
	addr := m.Options().Addr
	info, err := m.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("master %s: %w", addr, classify(ctx, err))
	}
	state, assigned, failed := infoField(info, "cluster_state"), infoField(info, "cluster_slots_assigned"), infoField(info, "cluster_slots_fail")
	if state != "ok" || assigned != hashSlots || failed != "0" {
		return fmt.Errorf("%w: master %s sees cluster_state:%s, %s of %s hash slots assigned, %s of them on failed masters",
			schemas.ErrUnavailable, addr, state, assigned, hashSlots, failed)
	}
	return nil
}

// infoField is one "name:value" line of an INFO or CLUSTER INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

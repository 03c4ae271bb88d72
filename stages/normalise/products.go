package normalise

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// busProducts reads product batches from the PRODUCTS stream by sequence.
// An update file touches products of the same few earlier batches over and
// over, so the decoded batches last read are kept.
type busProducts struct {
	bus    *pipeline.Bus
	recent *lru.Cache[uint64, *schemas.ProductBatch]
}

func newBusProducts(bus *pipeline.Bus) *busProducts {
	recent, _ := lru.New[uint64, *schemas.ProductBatch](64) // fails only for a size below 1
	return &busProducts{bus: bus, recent: recent}
}

// BatchAt implements ProductLog.
func (p *busProducts) BatchAt(ctx context.Context, seq uint64) (*schemas.ProductBatch, error) {
	if b, ok := p.recent.Get(seq); ok {
		return b, nil
	}
	m, err := p.bus.MessageAt(ctx, topology.StreamProducts, seq)
	if err != nil {
		return nil, err
	}
	var b schemas.ProductBatch
	if err := schemas.UnmarshalProductBatch(m.Data, &b); err != nil {
		return nil, fmt.Errorf("%s sequence %d: %w", topology.StreamProducts, seq, err)
	}
	p.recent.Add(seq, &b)
	return &b, nil
}

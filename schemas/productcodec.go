package schemas

import (
	json "github.com/goccy/go-json"
)

// Product batches are decoded by every stage after normalise and by each
// worker's rebuild, so they use a faster encoding/json-compatible codec
// (goccy/go-json): same JSON, about half the CPU.

// MarshalProductBatch encodes a product batch for the bus.
func MarshalProductBatch(b *ProductBatch) ([]byte, error) { return json.Marshal(b) }

// UnmarshalProductBatch decodes what MarshalProductBatch wrote. Its strings
// share one copy of data: one kept past the batch keeps all of it, so what
// outlives the batch clones the strings it keeps (strings.Clone).
func UnmarshalProductBatch(data []byte, b *ProductBatch) error { return json.Unmarshal(data, b) }

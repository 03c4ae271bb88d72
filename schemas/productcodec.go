package schemas

import (
	json "github.com/goccy/go-json"
)

// Product batches are decoded by every stage after normalise and by each
// worker's rebuild, so they use a faster encoding/json-compatible codec
// (goccy/go-json): same JSON, about half the CPU.

// MarshalProductBatch encodes a product batch for the bus.
func MarshalProductBatch(b *ProductBatch) ([]byte, error) { return json.Marshal(b) }

// UnmarshalProductBatch decodes what MarshalProductBatch wrote.
func UnmarshalProductBatch(data []byte, b *ProductBatch) error { return json.Unmarshal(data, b) }

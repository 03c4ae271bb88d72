package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology is what a bus declares: the application's streams, key-value
// buckets and object stores. The caller owns it; the bus creates it, with
// its replicas, on file storage.
type Topology struct {
	Streams      []StreamSpec
	Buckets      []BucketSpec
	ObjectStores []ObjectStoreSpec
}

// StreamSpec is one stream of messages.
type StreamSpec struct {
	Name     string
	Subjects []string
	// MaxAge is how long a message is kept; 0 keeps it forever.
	MaxAge time.Duration
	// Duplicates is how long the stream remembers message ids: a message
	// published again within it is dropped.
	Duplicates time.Duration
	// Compressed stores the stream's file blocks S2-compressed: less disk
	// for a little CPU as each block fills. The server compresses only
	// blocks written after the stream's store is opened with it, so on an
	// existing stream it takes effect from the server's next start.
	Compressed bool
}

// BucketSpec is one key-value bucket; it keeps one value per key.
type BucketSpec struct {
	Name        string
	Description string
	// TTL, when set, removes a value this long after it was written.
	TTL time.Duration
	// MaxValueSize bounds one value; 0 leaves it to the server.
	MaxValueSize int32
	// ReplicaReads lets any replica answer reads. Without it only the
	// leader answers, so what was just written is read back (leaderReads).
	ReplicaReads bool
}

// ObjectStoreSpec is one store of files; its reads are answered by its
// leader only.
type ObjectStoreSpec struct {
	Name        string
	Description string
	// Compressed stores the files' chunks S2-compressed, as a stream's.
	Compressed bool
}

func (b *Bus) streamConfig(s StreamSpec) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.Name,
		Subjects:    s.Subjects,
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Duplicates:  s.Duplicates,
		Replicas:    b.replicas,
		MaxMsgSize:  MaxPayload,
		Compression: compression(s.Compressed),
	}
}

func compression(on bool) jetstream.StoreCompression {
	if on {
		return jetstream.S2Compression
	}
	return jetstream.NoCompression
}

func (b *Bus) bucketConfig(s BucketSpec) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: s.Name, Description: s.Description, History: 1, TTL: s.TTL,
		Storage: jetstream.FileStorage, Replicas: b.replicas, MaxValueSize: s.MaxValueSize}
}

// StreamNames names every stream Declare creates: the topology's own, and
// those behind its buckets and object stores.
func (t Topology) StreamNames() []string {
	var names []string
	for _, s := range t.Streams {
		names = append(names, s.Name)
	}
	for _, kv := range t.Buckets {
		names = append(names, "KV_"+kv.Name)
	}
	for _, o := range t.ObjectStores {
		names = append(names, "OBJ_"+o.Name)
	}
	return names
}

// Declare creates or updates every stream, bucket and object store of t.
// It is idempotent: a second start with the same topology changes nothing.
func (b *Bus) Declare(ctx context.Context, t Topology) error {
	for _, s := range t.Streams {
		cfg := b.streamConfig(s)
		b.noteCompressionChange(ctx, cfg.Name, cfg.Compression)
		if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("declare stream %s: %w", s.Name, err)
		}
	}
	for _, kv := range t.Buckets {
		if _, err := b.js.CreateOrUpdateKeyValue(ctx, b.bucketConfig(kv)); err != nil {
			return fmt.Errorf("declare bucket %s: %w", kv.Name, err)
		}
		if !kv.ReplicaReads {
			if err := b.leaderReads(ctx, "KV_"+kv.Name); err != nil {
				return err
			}
		}
	}
	for _, o := range t.ObjectStores {
		b.noteCompressionChange(ctx, "OBJ_"+o.Name, compression(o.Compressed))
		if _, err := b.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: o.Name, Description: o.Description, Storage: jetstream.FileStorage, Replicas: b.replicas, Compression: o.Compressed,
		}); err != nil {
			return fmt.Errorf("declare object store %s: %w", o.Name, err)
		}
		if err := b.leaderReads(ctx, "OBJ_"+o.Name); err != nil {
			return err
		}
	}
	return nil
}

// noteCompressionChange says when declaring changes an existing stream's
// compression: nats-server takes the change at once but writes compressed
// blocks only after it opens the stream's files again, at its next start.
func (b *Bus) noteCompressionChange(ctx context.Context, stream string, want jetstream.StoreCompression) {
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return // a new stream, or one the next call reports on
	}
	if have := st.CachedInfo().Config.Compression; have != want {
		b.log.Info("stream compression changed; blocks written after the NATS server's next start use it, those on disk stay as they are",
			"stream", stream, "from", have.String(), "to", want.String())
	}
}

// Undeclare deletes every stream, bucket and object store of t, and what
// they hold; those already gone are skipped. For benchmarks and tests on a
// NATS of their own.
func (b *Bus) Undeclare(ctx context.Context, t Topology) error {
	for _, n := range t.StreamNames() {
		if err := b.js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", n, err)
		}
	}
	return nil
}

// leaderReads has a bucket's reads answered by its leader only. Buckets
// allow any replica to answer by default, and a replica that is catching
// up (one restarted after a node loss answers once 90% synchronised)
// answers without what was just written: an upload the API recorded a
// moment ago was "not in the ledger", its file "gone from the store". What
// is recorded and then acted upon is read where it is current; a bucket
// read in batches, where a moment's lag never leads to a wrong decision,
// may say ReplicaReads.
func (b *Bus) leaderReads(ctx context.Context, stream string) error {
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("declare %s: %w", stream, err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("declare %s with reads from its leader: %w", stream, err)
	}
	return nil
}

// KV opens a declared key-value bucket.
func (b *Bus) KV(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := b.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", bucket, err)
	}
	return patientKV{kv}, nil
}

// kvPatience is how long a bucket call waits for somebody to answer.
const kvPatience = 10 * time.Second

// patientKV asks again when nobody answered a call: for a moment after a
// NATS node is lost, or while a bucket's leader is elected, reads and
// writes meet no responders although the bucket is fine. Nothing was read
// or stored then, so asking again is safe.
type patientKV struct{ jetstream.KeyValue }

func patiently[T any](ctx context.Context, call func() (T, error)) (T, error) {
	deadline := time.Now().Add(kvPatience)
	pause := 50 * time.Millisecond
	for {
		v, err := call()
		if !noResponders(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return v, err
		}
		sleep(ctx, pause)
		pause = min(pause*2, time.Second)
	}
}

func (kv patientKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	return patiently(ctx, func() (jetstream.KeyValueEntry, error) { return kv.KeyValue.Get(ctx, key) })
}

func (kv patientKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return patiently(ctx, func() (uint64, error) { return kv.KeyValue.Put(ctx, key, value) })
}

func (kv patientKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return patiently(ctx, func() (uint64, error) { return kv.KeyValue.Create(ctx, key, value, opts...) })
}

func (kv patientKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return patiently(ctx, func() (uint64, error) { return kv.KeyValue.Update(ctx, key, value, revision) })
}

// Objects opens a declared object store.
func (b *Bus) Objects(ctx context.Context, name string) (jetstream.ObjectStore, error) {
	st, err := b.js.ObjectStore(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", name, err)
	}
	return st, nil
}

// ObjectsStream opens the stream behind a declared object store, where the
// chunks of every stored file live.
func (b *Bus) ObjectsStream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := b.js.Stream(ctx, "OBJ_"+name)
	if err != nil {
		return nil, fmt.Errorf("open the stream of object store %s: %w", name, err)
	}
	return st, nil
}

package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"feedline/schemas"
)

// Stream names.
const (
	StreamUploads   = "UPLOADS"
	StreamRaw       = "RAW"
	StreamProducts  = "PRODUCTS"
	StreamAnalytics = "ANALYTICS"
	StreamDLQ       = "DLQ"
	StreamSocial    = "SOCIAL"
	StreamStaged    = "STAGED"
)

// StagedRetention is how long a held upload's changes wait for its
// partner's confirmation.
const StagedRetention = 30 * 24 * time.Hour

// Buckets of small state kept in JetStream.
const (
	BucketUploads  = "uploads"  // key-value: upload records and per-batch progress
	BucketPartners = "partners" // key-value: partners and hashed keys
	BucketMappings = "mappings" // key-value: every mapping version
	ObjectUploads  = "uploads"  // object store: the uploaded files
	BucketPosts    = "posts"    // key-value: post content, the durable home every instance reads
	BucketRequests = "requests" // key-value: first answers to writes sent with an Idempotency-Key
	BucketReaders  = "readers"  // key-value: each shopper's last feed read, restored before feeds are replayed
)

// IdempotencyWindow is how long a write's Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values: a
// crashed stage republishing within it creates no duplicate.
const DuplicateWindow = 20 * time.Minute

// StreamConfigs are the streams feedline needs. PRODUCTS is kept forever: it
// is the source of truth every derived store is rebuilt from.
func (b *Bus) StreamConfigs() []jetstream.StreamConfig {
	week := 7 * 24 * time.Hour
	mk := func(name, subject string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:       name,
			Subjects:   []string{subject + ".>"},
			Storage:    jetstream.FileStorage,
			Retention:  jetstream.LimitsPolicy,
			MaxAge:     maxAge,
			Duplicates: DuplicateWindow,
			Replicas:   b.replicas,
			MaxMsgSize: MaxPayload,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamUploads, schemas.SubjectUploaded, 30*24*time.Hour),
		mk(StreamRaw, schemas.SubjectRaw, week),
		mk(StreamProducts, schemas.SubjectProduct, 0),
		mk(StreamAnalytics, "analytics", 30*24*time.Hour),
		mk(StreamDLQ, schemas.SubjectDLQ, 30*24*time.Hour),
		// Shopper writes are kept forever: feeds and the follow graph are
		// rebuilt from them.
		mk(StreamSocial, "social", 0),
		// A full upload's changes wait here until the upload closes, and
		// a held one's until it is confirmed.
		mk(StreamStaged, schemas.SubjectStaged, StagedRetention),
	}
}

func (b *Bus) bucketConfigs() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: BucketUploads, Description: "upload records and per-batch progress", History: 1, Storage: jetstream.FileStorage, Replicas: b.replicas, MaxValueSize: 1 << 20},
		{Bucket: BucketPartners, Description: "partners and hashed API keys", History: 1, Storage: jetstream.FileStorage, Replicas: b.replicas},
		{Bucket: BucketMappings, Description: "every version of every partner mapping", History: 1, Storage: jetstream.FileStorage, Replicas: b.replicas},
		{Bucket: BucketPosts, Description: "post content by post id", History: 1, Storage: jetstream.FileStorage, Replicas: b.replicas},
		{Bucket: BucketRequests, Description: "first answers to idempotent writes", History: 1, TTL: IdempotencyWindow, Storage: jetstream.FileStorage, Replicas: b.replicas},
		{Bucket: BucketReaders, Description: "last feed read by shopper", History: 1, Storage: jetstream.FileStorage, Replicas: b.replicas},
	}
}

// Declared names every stream Declare creates: feedline's own, and those
// behind its buckets and its object store.
func (b *Bus) Declared() []string {
	var names []string
	for _, s := range b.StreamConfigs() {
		names = append(names, s.Name)
	}
	for _, kv := range b.bucketConfigs() {
		names = append(names, "KV_"+kv.Bucket)
	}
	return append(names, "OBJ_"+ObjectUploads)
}

// Declare creates or updates every stream and bucket. It is idempotent: a
// second start with the same configuration changes nothing.
func (b *Bus) Declare(ctx context.Context) error {
	for _, cfg := range b.StreamConfigs() {
		if _, err := b.JS.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
		}
	}
	for _, kv := range b.bucketConfigs() {
		if _, err := b.JS.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("declare bucket %s: %w", kv.Bucket, err)
		}
		if kv.Bucket != BucketPosts && kv.Bucket != BucketReaders {
			if err := b.leaderReads(ctx, "KV_"+kv.Bucket); err != nil {
				return err
			}
		}
	}
	if _, err := b.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: ObjectUploads, Description: "uploaded partner files", Storage: jetstream.FileStorage, Replicas: b.replicas,
	}); err != nil {
		return fmt.Errorf("declare object store %s: %w", ObjectUploads, err)
	}
	return b.leaderReads(ctx, "OBJ_"+ObjectUploads)
}

// leaderReads has a bucket's reads answered by its leader only. Buckets
// allow any replica to answer by default, and a replica that is catching
// up (one restarted after a node loss answers once 90% synchronised)
// answers without what was just written: an upload the API recorded a
// moment ago was "not in the ledger", its file "gone from the store". What
// feedline records and then acts upon is read where it is current. Posts
// and feed reads stay readable from any replica: they are read in batches,
// and a moment's lag there shows an older feed, never a wrong decision.
func (b *Bus) leaderReads(ctx context.Context, stream string) error {
	st, err := b.JS.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("declare %s: %w", stream, err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	if _, err := b.JS.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("declare %s with reads from its leader: %w", stream, err)
	}
	return nil
}

// KV opens a declared key-value bucket.
func (b *Bus) KV(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := b.JS.KeyValue(ctx, bucket)
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

// Objects opens the uploads object store.
func (b *Bus) Objects(ctx context.Context) (jetstream.ObjectStore, error) {
	st, err := b.JS.ObjectStore(ctx, ObjectUploads)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", ObjectUploads, err)
	}
	return st, nil
}

// ObjectsStream opens the stream behind the uploads object store, where the
// chunks of every stored file live.
func (b *Bus) ObjectsStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := b.JS.Stream(ctx, "OBJ_"+ObjectUploads)
	if err != nil {
		return nil, fmt.Errorf("open the stream of object store %s: %w", ObjectUploads, err)
	}
	return st, nil
}

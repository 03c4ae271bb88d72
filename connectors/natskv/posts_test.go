package natskv

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

func testPosts(t *testing.T) Posts {
	b := testBus(t)
	kv, err := b.KV(context.Background(), topology.BucketPosts)
	if err != nil {
		t.Fatal(err)
	}
	return Posts{KV: kv, JS: b.JetStream()}
}

func TestPostsReadManyInOneCallSkippingMissingAndDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testPosts(t)
	var ids []string
	want := map[string]schemas.Post{}
	for i := range 30 {
		p := schemas.Post{ID: strings.ToLower(ulid.Make().String()), Author: fmt.Sprint("u", i%3), Text: fmt.Sprintf("post %d 안녕", i),
			ImageURLs: []string{"https://img.example/1.jpg"}, CreatedAt: time.Date(2026, 11, 1, 10, 0, i, 0, time.UTC)}
		if i%5 == 0 {
			p.ProductID = "acme:sku-1"
		}
		if err := s.Put(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
		want[p.ID] = p
	}
	if err := s.Delete(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	delete(want, ids[3])
	// Replacing keeps the newest content.
	edited := want[ids[4]]
	edited.Text = "edited"
	if err := s.Put(ctx, edited); err != nil {
		t.Fatal(err)
	}
	want[ids[4]] = edited

	got, err := s.Get(ctx, append(ids, "01missingpost", "bad key!"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %d posts, want %d", len(got), len(want))
		for id, p := range want {
			if !reflect.DeepEqual(got[id], p) {
				t.Errorf("%s: got %+v want %+v", id, got[id], p)
			}
		}
	}
	if got, err := s.Get(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v %v", got, err)
	}
	if got, err := s.Get(ctx, []string{"01nothere"}); err != nil || len(got) != 0 {
		t.Errorf("only missing ids: %v %v", got, err)
	}
	if err := s.Delete(ctx, "01nothere"); err != nil {
		t.Errorf("deleting a missing post: %v", err)
	}
}

func BenchmarkPostsGet20(b *testing.B) {
	ctx := context.Background()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	if err := bus.Declare(ctx, topology.Feedline()); err != nil {
		b.Fatal(err)
	}
	kv, err := bus.KV(ctx, topology.BucketPosts)
	if err != nil {
		b.Fatal(err)
	}
	s := Posts{KV: kv, JS: bus.JetStream()}
	var ids []string
	for i := range 1000 {
		p := schemas.Post{ID: strings.ToLower(ulid.Make().String()), Author: "u1", Text: fmt.Sprint("post ", i), CreatedAt: time.Now()}
		if err := s.Put(ctx, p); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		from := (i * 20) % 980
		got, err := s.Get(ctx, ids[from:from+20])
		if err != nil || len(got) != 20 {
			b.Fatal(len(got), err)
		}
	}
}

package feed

import (
	"errors"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"feedline/schemas"
)

func newID() string { return strings.ToLower(ulid.Make().String()) }

func TestMergeKeepsNewestFirstWithoutDuplicates(t *testing.T) {
	e := func(id string) schemas.FeedEntry { return schemas.FeedEntry{ID: id} }
	got := merge(4, []schemas.FeedEntry{e("9"), e("5"), e("1")}, []schemas.FeedEntry{e("8"), e("5"), e("2")})
	want := []string{"9", "8", "5", "2"}
	for i, g := range got {
		if g.ID != want[i] {
			t.Fatalf("merge %v", got)
		}
	}
	if len(got) != 4 {
		t.Fatalf("merge %v", got)
	}
}

func TestCursorRoundTripAndRejection(t *testing.T) {
	id := newID()
	got, err := decodeCursor(encodeCursor(id))
	if err != nil || got != id {
		t.Errorf("round trip %q %v", got, err)
	}
	for _, c := range []string{"!!", encodeCursor("not-a-ulid"), "ZjE6"} {
		if _, err := decodeCursor(c); !errors.Is(err, schemas.ErrBadCursor) {
			t.Errorf("cursor %q accepted", c)
		}
	}
}

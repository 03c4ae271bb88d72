package natskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"feedline/schemas"
)

// The per-partner index of uploads lives in the uploads bucket beside the
// upload records: "list.<partner>.head" holds the number of the newest
// page, "list.<partner>.<n>" the ids of page n in the order they were
// created, at most listPage each. A page of a listing reads one or two
// index pages however many uploads the partner has had, and a new upload
// rewrites one small page: a partner's millions of uploads over months are
// never scanned. Upload ids are not valid as these keys ("list." is not in
// the ULID alphabet), so the two never collide.
const listPage = 256

type listHead struct {
	Page int `json:"page"`
}

type listEntries struct {
	IDs []string `json:"ids"`
}

func listHeadKey(partner string) string        { return "list." + partner + ".head" }
func listPageKey(partner string, n int) string { return "list." + partner + "." + strconv.Itoa(n) }

// index appends an upload to its partner's index. Concurrent writers meet
// at compare-and-set: a page takes each id once, and a full page is closed
// by the writer that creates the next one.
func (l Ledger) index(ctx context.Context, partner, id string) error {
	for {
		var head listHead
		err := getJSON(ctx, l.KV, listHeadKey(partner), &head)
		if errors.Is(err, schemas.ErrNotFound) {
			head, err = createJSON(ctx, l.KV, listHeadKey(partner), listHead{})
		}
		if err != nil {
			return err
		}
		n := head.Page
		full := false
		if _, err := update(ctx, l.KV, listPageKey(partner, n), func(p *listEntries) bool {
			if len(p.IDs) >= listPage {
				full = true
				return false
			}
			for _, have := range p.IDs {
				if have == id {
					return false
				}
			}
			p.IDs = append(p.IDs, id)
			return true
		}); err != nil {
			return err
		}
		if !full {
			return nil
		}
		// Move the head past the full page unless another writer did.
		if _, err := update(ctx, l.KV, listHeadKey(partner), func(h *listHead) bool {
			if h.Page > n {
				return false
			}
			h.Page = n + 1
			return true
		}); err != nil {
			return err
		}
	}
}

// unindex removes an upload that was never announced from its partner's
// index; it was just added, so it is on the newest page or the one before.
func (l Ledger) unindex(ctx context.Context, partner, id string) error {
	var head listHead
	if err := getJSON(ctx, l.KV, listHeadKey(partner), &head); err != nil {
		if errors.Is(err, schemas.ErrNotFound) {
			return nil
		}
		return err
	}
	for n := head.Page; n >= max(head.Page-1, 0); n-- {
		removed := false
		if _, err := update(ctx, l.KV, listPageKey(partner, n), func(p *listEntries) bool {
			for i, have := range p.IDs {
				if have == id {
					p.IDs, removed = append(p.IDs[:i], p.IDs[i+1:]...), true
					return true
				}
			}
			return false
		}); err != nil || removed {
			return err
		}
	}
	return nil
}

// ListUploads implements schemas.UploadList: newest first, in the order
// the uploads were accepted. A cursor is "<page>.<position>" of the next
// id to return.
func (l Ledger) ListUploads(ctx context.Context, partner, cursor string, limit int) ([]string, string, error) {
	var page int
	pos := -1
	if cursor == "" {
		var h listHead
		if err := getJSON(ctx, l.KV, listHeadKey(partner), &h); errors.Is(err, schemas.ErrNotFound) {
			return nil, "", nil
		} else if err != nil {
			return nil, "", err
		}
		page = h.Page
	} else {
		p, i, ok := strings.Cut(cursor, ".")
		var err1, err2 error
		page, err1 = strconv.Atoi(p)
		pos, err2 = strconv.Atoi(i)
		if !ok || err1 != nil || err2 != nil || page < 0 || pos < 0 || pos >= listPage {
			return nil, "", fmt.Errorf("cursor %q: %w", cursor, schemas.ErrBadCursor)
		}
	}
	var ids []string
	for ; page >= 0; page, pos = page-1, -1 {
		var p listEntries
		if err := getJSON(ctx, l.KV, listPageKey(partner, page), &p); err != nil && !errors.Is(err, schemas.ErrNotFound) {
			return nil, "", err
		}
		if pos < 0 || pos >= len(p.IDs) {
			pos = len(p.IDs) - 1
		}
		for ; pos >= 0; pos-- {
			if len(ids) == limit {
				return ids, strconv.Itoa(page) + "." + strconv.Itoa(pos), nil
			}
			ids = append(ids, p.IDs[pos])
		}
	}
	return ids, "", nil
}

// inFlight is one reserved slot: the upload and when it was taken, so an
// upload still arriving (not yet recorded) keeps its slot for a while.
type inFlight struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// unrecordedSlot is how long a slot of an upload without a record is kept:
// its body may still be arriving; one longer gone was cut short or its
// process died.
const unrecordedSlot = time.Hour

func busyKey(partner string) string { return "busy." + partner }

// Reserve implements schemas.UploadSlots. The partner's slots are one key;
// uploads that finished give theirs up when the slots are full, so a
// partner that stays within its limit costs one read and one write.
func (l Ledger) Reserve(ctx context.Context, partner, id string, limit int) error {
	if limit <= 0 {
		return nil
	}
	var verr error
	_, err := update(ctx, l.KV, busyKey(partner), func(slots *[]inFlight) bool {
		verr = nil
		if len(*slots) >= limit {
			kept := (*slots)[:0:0]
			for _, s := range *slots {
				live, err := l.stillInFlight(ctx, s)
				if err != nil {
					verr = err
					return false
				}
				if live {
					kept = append(kept, s)
				}
			}
			*slots = kept
		}
		if len(*slots) >= limit {
			verr = fmt.Errorf("partner %s has %d uploads in flight: %w", partner, len(*slots), schemas.ErrBusy)
			return false
		}
		*slots = append(*slots, inFlight{ID: id, At: time.Now().UTC()})
		return true
	})
	if err != nil {
		return err
	}
	return verr
}

// stillInFlight reports whether a slot's upload is still arriving or
// being processed.
func (l Ledger) stillInFlight(ctx context.Context, s inFlight) (bool, error) {
	st, err := l.Status(ctx, s.ID)
	if errors.Is(err, schemas.ErrNotFound) {
		return time.Since(s.At) < unrecordedSlot, nil
	}
	if err != nil {
		return false, err
	}
	return !schemas.Finished(st.State), nil
}

// Release implements schemas.UploadSlots.
func (l Ledger) Release(ctx context.Context, partner, id string) error {
	_, err := update(ctx, l.KV, busyKey(partner), func(slots *[]inFlight) bool {
		for i, s := range *slots {
			if s.ID == id {
				*slots = append((*slots)[:i], (*slots)[i+1:]...)
				return true
			}
		}
		return false
	})
	return err
}

// RecordCancel stores the first cancellation of an upload.
func (l Ledger) RecordCancel(ctx context.Context, upload string, r schemas.CancelRecord) (schemas.CancelRecord, error) {
	return createJSON(ctx, l.KV, upload+".cancel", r)
}

// Cancelled reports whether the upload was cancelled.
func (l Ledger) Cancelled(ctx context.Context, upload string) (bool, error) {
	c, err := optional[schemas.CancelRecord](ctx, l.KV, upload+".cancel")
	return c != nil, err
}

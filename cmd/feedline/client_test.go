package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A 503 with Retry-After sends the file again, whole; a 400 is not retried.
func TestClientSendsAgainWhenTheAPIAsksToRetry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		n := len(bodies)
		mu.Unlock()
		switch {
		case r.URL.Path == "/bad":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"title":"Bad request","status":400,"detail":"no"}`)
		case n == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"title":"Service unavailable","status":503}`)
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"upload_id":"u1"}`)
		}
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "feed.csv")
	if err := os.WriteFile(path, []byte("id,title\n1,a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := newClient(srv.URL, "k")
	var acc struct {
		UploadID string `json:"upload_id"`
	}
	if err := c.do(t.Context(), "POST", "/up", f, 13, &acc); err != nil || acc.UploadID != "u1" {
		t.Fatalf("do = %v, %+v", err, acc)
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || bodies[1] != "id,title\n1,a\n" {
		t.Fatalf("bodies the server read = %q, want the whole file twice", bodies)
	}
	err = c.do(t.Context(), "POST", "/bad", nil, -1, nil)
	var p *problem
	if !errors.As(err, &p) || p.Status != http.StatusBadRequest || len(bodies) != 3 {
		t.Errorf("400: err %v after %d requests, want one problem and no retry", err, len(bodies))
	}
}

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbeAcceptsOnly2xxInTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte(`{"status":"ready"}`))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"unavailable","error":"stage index has no bound consumer"}`))
		}
	}))
	defer srv.Close()
	ctx := t.Context()

	if err := probe(ctx, srv.Client(), srv.URL+"/readyz"); err != nil {
		t.Errorf("ready: %v", err)
	}
	err := probe(ctx, srv.Client(), srv.URL+"/unready")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "no bound consumer") {
		t.Errorf("unready: %v, want the status and the reason", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := probe(short, srv.Client(), srv.URL+"/slow"); err == nil {
		t.Error("a slow answer passed")
	}
	srv.Close()
	if err := probe(ctx, http.DefaultClient, srv.URL+"/readyz"); err == nil {
		t.Error("a closed port passed")
	}
}

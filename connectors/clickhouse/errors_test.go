package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"feedline/schemas"
)

func TestClassify(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel := context.WithTimeout(live, 0)
	defer cancel()
	<-expired.Done()

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name        string
		ctx         context.Context
		err         error
		unavailable bool
		is          error // must also be reported
	}{
		{"too many parts", live, &clickhouse.Exception{Code: 252, Message: "Too many parts"}, true, nil},
		{"memory limit", live, fmt.Errorf("send: %w", &clickhouse.Exception{Code: 241}), true, nil},
		{"unknown table", live, &clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}, false, nil},
		{"syntax error", live, &clickhouse.Exception{Code: 62}, false, nil},
		{"connection refused", live, refused, true, syscall.ECONNREFUSED},
		{"connection cut", live, fmt.Errorf("read: %w", io.EOF), true, io.EOF},
		{"pool exhausted", live, clickhouse.ErrAcquireConnTimeout, true, nil},
		{"bad value", live, errors.New("converting string to UInt64 is unsupported"), false, nil},
		{"cancelled", cancelled, context.Canceled, false, context.Canceled},
		{"cancelled while the server is down", cancelled, refused, false, context.Canceled},
		{"deadline passed", expired, errors.New("read: i/o timeout"), true, context.DeadlineExceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := classify(c.ctx, c.err)
			if !errors.Is(got, c.err) {
				t.Errorf("classify(%v) = %v, which does not wrap the original error", c.err, got)
			}
			if errors.Is(got, schemas.ErrUnavailable) != c.unavailable {
				t.Errorf("classify(%v) = %v; unavailable = %v, want %v", c.err, got, !c.unavailable, c.unavailable)
			}
			if c.is != nil && !errors.Is(got, c.is) {
				t.Errorf("classify(%v) = %v, want it to wrap %v", c.err, got, c.is)
			}
		})
	}
	if classify(live, nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"analytics": "`analytics`",
		"a`b":       "`a\\`b`",
		`a\b`:       "`a\\\\b`",
	} {
		if got := quoteIdent(in); got != want {
			t.Errorf("quoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

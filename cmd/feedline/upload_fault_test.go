package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"feedline/api"
	"feedline/connectors/decode"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// storedState is what a system keeps of uploads: the upload records and the
// bytes of the object store's stream.
type storedState struct {
	records int
	objMsgs uint64
}

func (ts *testSystem) stored() storedState {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return storedOf(ctx, ts.t, ts.sys.bus)
}

func storedOf(ctx context.Context, t *testing.T, bus *pipeline.Bus) storedState {
	t.Helper()
	kv, err := bus.KV(ctx, topology.BucketUploads)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		if !strings.Contains(k, ".") {
			records++
		}
	}
	return storedState{records: records, objMsgs: streamMsgs(ctx, t, bus, "OBJ_"+topology.ObjectUploads)}
}

// streamMsgs counts the messages a stream holds.
func streamMsgs(ctx context.Context, t *testing.T, bus *pipeline.Bus, stream string) uint64 {
	t.Helper()
	st, err := bus.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// rawRequest sends head, then body in pieces of step bytes with pause
// between them, then closes the connection without reading an answer when
// hangUp is set; otherwise it returns what the server answered.
func rawRequest(t *testing.T, addr, head string, body []byte, step int, pause time.Duration, hangUp bool) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	for len(body) > 0 {
		n := min(step, len(body))
		if _, err := conn.Write(body[:n]); err != nil {
			break // the server gave up on us: what the slow client test wants
		}
		body = body[n:]
		time.Sleep(pause)
	}
	if hangUp {
		return ""
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "no answer: " + err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return fmt.Sprintf("%d %s", res.StatusCode, b)
}

func uploadHead(ts *testSystem, partner, key, extra string) string {
	return fmt.Sprintf("POST /v1/partners/%s/uploads?mode=full HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s\r\n",
		partner, strings.TrimPrefix(ts.base, "http://"), key, extra)
}

// A client that breaks off a full re-upload must not wipe the catalog:
// whatever arrived is not stored, announced or applied, however the body
// was cut (declared length, chunked without its last chunk, a multipart form
// without its closing boundary) or however slowly it trickled in.
func TestUploadCutShortChangesNothing(t *testing.T) {
	ts := startTestSystemWith(t, t.TempDir(), func(c *serveConfig) {
		c.Body = api.BodyLimits{Idle: 2 * time.Second, MinRate: 4096}
	})
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, decode.GeneratedMapping)
	var full bytes.Buffer
	if err := decode.GenerateCSV(&full, 2_000, 0); err != nil {
		t.Fatal(err)
	}
	st := ts.uploadOK("acme", key, full.Bytes(), "")
	live := int(st.Counts.Accepted)
	if st.State != schemas.StateDone || live < 1_900 {
		t.Fatalf("first upload: %s %+v", st.State, st.Counts)
	}
	before := ts.stored()
	// The re-upload lists other products, so applying any part of it would
	// delete most of the catalog.
	var other bytes.Buffer
	if err := decode.GenerateCSV(&other, 6_000, 0); err != nil {
		t.Fatal(err)
	}
	header, rest, _ := bytes.Cut(other.Bytes(), []byte("\n"))
	tail := rest[len(rest)/2:]
	file := append(append(header, '\n'), tail[bytes.IndexByte(tail, '\n')+1:]...)
	addr := strings.TrimPrefix(ts.base, "http://")

	t.Run("declared length, a third sent", func(t *testing.T) {
		head := uploadHead(ts, "acme", key, fmt.Sprintf("Content-Type: text/csv\r\nContent-Length: %d\r\n", len(file)))
		rawRequest(t, addr, head, file[:len(file)/3], 64<<10, 0, true)
	})
	t.Run("chunked, no last chunk", func(t *testing.T) {
		var body bytes.Buffer
		for part := range slices.Chunk(file[:len(file)/2], 32<<10) {
			fmt.Fprintf(&body, "%x\r\n%s\r\n", len(part), part)
		}
		head := uploadHead(ts, "acme", key, "Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n")
		rawRequest(t, addr, head, body.Bytes(), 64<<10, 0, true)
	})
	t.Run("multipart, no closing boundary", func(t *testing.T) {
		body := "--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"feed.csv\"\r\nContent-Type: text/csv\r\n\r\n" + string(file)
		head := uploadHead(ts, "acme", key, "Content-Type: multipart/form-data; boundary=b1\r\nTransfer-Encoding: chunked\r\n")
		var chunked bytes.Buffer
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(body), body)
		rawRequest(t, addr, head, chunked.Bytes(), 64<<10, 0, true)
	})
	// A client that stops or trickles is refused with the reason once it
	// has had the idle timeout: the first bytes go to the handler at once,
	// the rest one a second or not at all.
	for _, tc := range []struct {
		name, want string
		trickle    int
	}{{"stalls", "no data arrived", 0}, {"one byte a second", "bytes a second", 20}} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			fmt.Fprint(conn, uploadHead(ts, "acme", key, fmt.Sprintf("Content-Type: text/csv\r\nContent-Length: %d\r\n", len(file))))
			_, _ = conn.Write(file[:16<<10])
			answer := make(chan string, 1)
			go func() {
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				res, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					answer <- "no answer: " + err.Error()
					return
				}
				b, _ := io.ReadAll(res.Body)
				answer <- fmt.Sprintf("%d %s", res.StatusCode, b)
			}()
			var got string
		send:
			for i := 0; i < tc.trickle; i++ {
				select {
				case got = <-answer:
					break send
				case <-time.After(time.Second):
					_, _ = conn.Write(file[16<<10+i : 16<<10+i+1])
				}
			}
			if got == "" {
				got = <-answer
			}
			if !strings.HasPrefix(got, "400") || !strings.Contains(got, tc.want) {
				t.Errorf("a client that %s was answered %q, want 400 saying %q", tc.name, got, tc.want)
			}
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("a client that %s held its upload open for %s", tc.name, took)
			}
		})
	}
	t.Run("declared length, a third sent, answer read", func(t *testing.T) {
		// A client that half-closes after a short body gets a reason.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, uploadHead(ts, "acme", key, fmt.Sprintf("Content-Type: text/csv\r\nContent-Length: %d\r\n", len(file))))
		_, _ = conn.Write(file[:len(file)/3])
		_ = conn.(*net.TCPConn).CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a body cut short: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "Content-Length") {
			t.Errorf("a body cut short was answered %d %s", res.StatusCode, b)
		}
	})

	eventually(t, "the cut bodies' chunks to be removed", func() bool { return ts.stored() == before })
	// Nothing stays behind a moment later either.
	time.Sleep(time.Second)
	if got := ts.stored(); got != before {
		t.Errorf("after the cut uploads the system keeps %+v, want %+v as before them", got, before)
	}
	if got := ts.allProducts("acme"); len(got) != live {
		t.Errorf("catalog holds %d products after cut re-uploads, want the %d it had", len(got), live)
	}
	// A slow but steady upload that takes longer than the idle timeout is
	// whole and accepted: the limits bound silence and trickles, not length.
	t.Run("steady and longer than the idle timeout", func(t *testing.T) {
		small := append(append(append([]byte{}, header...), '\n'), rest[:64<<10]...)
		small = small[:bytes.LastIndexByte(small, '\n')+1]
		head := uploadHead(ts, "acme", key, fmt.Sprintf("Content-Type: text/csv\r\nContent-Length: %d\r\n", len(small)))
		head = strings.Replace(head, "mode=full", "mode=delta", 1)
		start := time.Now()
		got := rawRequest(t, addr, head, small, 6<<10, 500*time.Millisecond, false)
		if !strings.HasPrefix(got, "202") || time.Since(start) < 4*time.Second {
			t.Fatalf("a steady %d-byte upload over %s was answered %q", len(small), time.Since(start), got)
		}
		var acc struct {
			UploadID string `json:"upload_id"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "202 ")), &acc); err != nil {
			t.Fatal(err)
		}
		if st := ts.waitUpload(acc.UploadID, key); st.State != schemas.StateDone || st.Counts.Read == 0 {
			t.Errorf("steady upload: %s %+v", st.State, st.Counts)
		}
	})
	// The service still takes a whole upload.
	again := ts.uploadOK("acme", key, full.Bytes(), "")
	if again.State != schemas.StateDone || int(again.Counts.Unchanged) != live {
		t.Errorf("whole re-upload after the cut ones: %s %+v", again.State, again.Counts)
	}
	if n := ts.productCount(url.Values{"partner": {"acme"}}); int(n) != live {
		t.Errorf("search finds %d products, want %d", n, live)
	}
}

// A process killed while a body streams in leaves chunks no file refers
// to; the next start removes them.
func TestKilledMidBodyLeavesNoOrphanedChunks(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProcess(t, bin, dir, addr)
	ts := &testSystem{t: t, base: "http://" + addr, dir: dir}
	key := ts.addPartner("acme")
	ts.setMapping("acme", key, decode.GeneratedMapping)

	var file bytes.Buffer
	if err := decode.GenerateCSV(&file, 60_000, 0); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, uploadHead(ts, "acme", key, fmt.Sprintf("Content-Type: text/csv\r\nContent-Length: %d\r\n", file.Len()*2)))
	if _, err := conn.Write(file.Bytes()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // let the server store chunks of it
	p.kill(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	orphans := openStored(ctx, t, dir)
	if orphans.objMsgs == 0 {
		t.Fatalf("the killed process stored no chunks of the body (%+v); the test shows nothing", orphans)
	}
	if orphans.records != 0 {
		t.Fatalf("a body still arriving has an upload record: %+v", orphans)
	}

	p = startProcess(t, bin, dir, addr)
	p.terminate(t)
	if after := openStored(ctx, t, dir); after.objMsgs != 0 || after.records != 0 {
		t.Errorf("after a restart %d chunk(s) of the killed upload remain (%+v); want none", after.objMsgs, after)
	}
}

// openStored opens a stopped system's data directory and reads what it keeps.
func openStored(ctx context.Context, t *testing.T, dir string) storedState {
	t.Helper()
	bus, err := pipeline.Connect(ctx, pipeline.BusConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	return storedOf(ctx, t, bus)
}

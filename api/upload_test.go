package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"hash"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/schemas"
)

// serve runs the app on a loopback port, as in production, so request
// bodies really arrive as a stream.
func serve(t *testing.T, e *env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

// catalogFile produces a CSV file of exactly size bytes without holding it
// (or allocating per row), and hashes what it produced.
type catalogFile struct {
	size, done int64
	row        int64
	line       []byte
	pending    []byte
	sum        hash.Hash
}

func newCatalogFile(size int64) *catalogFile {
	return &catalogFile{size: size, pending: []byte("id,title,price,currency\n"), sum: sha256.New()}
}

func (f *catalogFile) Read(p []byte) (int, error) {
	if f.done >= f.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && f.done < f.size {
		if len(f.pending) == 0 {
			f.row++
			f.line = append(f.line[:0], "SKU-"...)
			f.line = strconv.AppendInt(f.line, f.row, 10)
			f.line = append(f.line, ",Product in a long catalog,"...)
			f.line = strconv.AppendInt(f.line, f.row%1000, 10)
			f.line = append(f.line, ".99,EUR\n"...)
			f.pending = f.line
		}
		c := copy(p[n:], f.pending[:min(int64(len(f.pending)), f.size-f.done)])
		f.pending = f.pending[c:]
		n += c
		f.done += int64(c)
	}
	f.sum.Write(p[:n])
	return n, nil
}

// heapPeak samples the live heap until stopped and reports the highest value.
func heapPeak() (stop func() uint64) {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		peak = max(peak, m.HeapAlloc)
		mu.Unlock()
	}
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				sample()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak
	}
}

func postFile(t *testing.T, url, key string, body io.Reader, size int64) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size // -1: chunked transfer encoding
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func storedDigest(t *testing.T, e *env, id string) ([]byte, int64) {
	t.Helper()
	rc, err := e.files.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil), n
}

// TestLargeUploadIsStreamed uploads 64 MiB, sixteen times the body limit, and
// checks it arrives whole while the heap never holds anything near its size.
func TestLargeUploadIsStreamed(t *testing.T) {
	e := newEnv(t)
	key := e.createPartner(t, "bulk")
	e.putMapping(t, "bulk", key, map[string]string{"preset": "google_merchant"})
	base := serve(t, e)

	const size = 64 << 20
	// Warm up: the first upload allocates connection buffers and pools.
	if status, body, _ := postFile(t, base+"/v1/partners/bulk/uploads", key, newCatalogFile(1<<20), 1<<20); status != http.StatusAccepted {
		t.Fatalf("status %d: %s", status, body)
	}
	// A low GC target keeps HeapAlloc close to the live heap, so a buffered
	// body would show instead of hiding among garbage.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapPeak()

	file := newCatalogFile(size)
	status, body, _ := postFile(t, base+"/v1/partners/bulk/uploads?mode=full", key, file, size)
	peak := stop()
	if status != http.StatusAccepted {
		t.Fatalf("status %d: %s", status, body)
	}
	growth := int64(peak) - int64(before.HeapAlloc)
	t.Logf("heap %d MiB before, peak %d MiB during a %d MiB upload", before.HeapAlloc>>20, peak>>20, size>>20)
	// A buffered body grows the heap by at least its size; the embedded
	// NATS server compressing the stored file's blocks (S2) shares this heap.
	if growth > size*3/4 {
		t.Errorf("the heap grew by %d MiB during a %d MiB upload: the body was buffered", growth>>20, size>>20)
	}

	var acc uploadAccepted
	if err := json.Unmarshal(body, &acc); err != nil {
		t.Fatal(err)
	}
	digest, n := storedDigest(t, e, acc.UploadID)
	if n != size || !bytes.Equal(digest, file.sum.Sum(nil)) {
		t.Errorf("stored %d bytes with another content than the %d sent", n, size)
	}
	rec, err := e.ledger.Upload(context.Background(), acc.UploadID)
	if err != nil || rec.Size != size || rec.Format != schemas.FormatCSV {
		t.Errorf("ledger record %+v (%v)", rec, err)
	}
}

// TestChunkedUploadIsStored covers bodies of unknown length.
func TestChunkedUploadIsStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.createPartner(t, "chunky")
	e.putMapping(t, "chunky", key, map[string]string{"preset": "google_merchant"})
	base := serve(t, e)

	const size = 5<<20 + 17
	file := newCatalogFile(size)
	status, body, hdr := postFile(t, base+"/v1/partners/chunky/uploads", key, io.MultiReader(file), -1)
	if status != http.StatusAccepted {
		t.Fatalf("status %d: %s", status, body)
	}
	var acc uploadAccepted
	if err := json.Unmarshal(body, &acc); err != nil {
		t.Fatal(err)
	}
	if hdr.Get("Location") != "/v1/uploads/"+acc.UploadID {
		t.Errorf("Location %q", hdr.Get("Location"))
	}
	digest, n := storedDigest(t, e, acc.UploadID)
	if n != size || !bytes.Equal(digest, file.sum.Sum(nil)) {
		t.Errorf("stored %d bytes with another content than the %d sent", n, size)
	}
}

// TestRejectedUploadKeepsConnectionSound sends requests on one keep-alive
// connection after uploads rejected before their body was read: the unread
// body must never be taken for the next request.
func TestRejectedUploadKeepsConnectionSound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := serve(t, e)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()

	for _, size := range []int{10 << 10, 3 << 20} {
		// The body looks like a request, so a connection that parsed it as
		// one would answer something else than 200 to the health check.
		junk := strings.Repeat("GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n", size/36+1)[:size]
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/partners/ghost/uploads", strings.NewReader(junk))
		req.Header.Set("X-API-Key", testAdminKey)
		resp, err := client.Do(req)
		switch {
		case err != nil && size > 64<<10:
			// The server answered and closed the connection rather than read
			// megabytes it will not use; the client may see the reset first.
		case err != nil:
			t.Fatalf("%d byte upload: %v", size, err)
		default:
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("upload for an unknown partner: %d", resp.StatusCode)
			}
		}
		for range 3 {
			resp, err := client.Get(base + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"ok"`) {
				t.Fatalf("after a rejected %d byte upload, /healthz answered %d %s", size, resp.StatusCode, b)
			}
		}
	}
}

// A packed upload is recorded with its packing and charset, and the format
// of the file inside; one over the size limit is refused with 413 as the
// document says.
func TestPackedUploadIsRecordedAndOversizedRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxFileBytes = 1 << 20 })
	v := newConformance(t)
	key := e.createPartner(t, "acme")
	e.putMapping(t, "acme", key, map[string]any{"fields": map[string]string{"id": "id", "title": "title", "price": "price"}, "defaults": map[string]string{"currency": "EUR"}})
	var packed bytes.Buffer
	zw := gzip.NewWriter(&packed)
	_, _ = zw.Write([]byte("id;title;price\n1;Crème brûlée;4,50\n"))
	_ = zw.Close()
	req := request(http.MethodPost, "/v1/partners/acme/uploads", key, bytes.NewReader(packed.Bytes()))
	req.Header.Set("Content-Type", "application/octet-stream")
	r := e.send(t, req)
	v.check(t, req, r)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.StatusCode, r.body)
	}
	var acc uploadAccepted
	r.decode(t, &acc)
	up, err := e.ledger.Upload(context.Background(), acc.UploadID)
	if err != nil || up.Format != schemas.FormatCSV || up.Delimiter != ";" || up.Compression != schemas.CompressionGzip || up.Charset != schemas.CharsetUTF8 {
		t.Errorf("recorded %+v (%v)", up, err)
	}
	req = request(http.MethodGet, "/v1/uploads/"+acc.UploadID, key, nil)
	r = e.send(t, req)
	v.check(t, req, r)
	if !strings.Contains(string(r.body), `"compression":"gzip"`) {
		t.Errorf("status %s", r.body)
	}

	req = request(http.MethodPost, "/v1/partners/acme/uploads", key, bytes.NewReader(bytes.Repeat([]byte("1;x;1\n"), 200_000)))
	req.Header.Set("Content-Type", "application/octet-stream")
	r = e.send(t, req)
	v.check(t, req, r)
	if r.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(r.problem(t).Detail, "1048576 bytes") {
		t.Errorf("oversized upload: %d %s", r.StatusCode, r.body)
	}
}

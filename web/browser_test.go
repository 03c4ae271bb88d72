package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"feedline/pipeline/natstest"
)

const (
	testAdminKey = "browser-admin-key"
	testTokenKey = "browser-token-key-0123456789"
)

// TestPagesInABrowser runs the pages' scenarios (browsertest/run.mjs) in
// headless Chromium against a real feedline serve with seeded shops. It
// needs node, browsertest's node_modules (npm ci) and Chromium; without
// them it skips, and with CI=true it fails.
func TestPagesInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser and a feedline process")
	}
	node, chromium := browserTools(t)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := buildFeedline(ctx, t, dir)
	sys := startServe(t, bin, filepath.Join(dir, "data"))

	fixtures := filepath.Join(dir, "fixtures")
	if err := os.MkdirAll(fixtures, 0o755); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, shop := range seedShops() {
		keys[shop.id] = sys.createPartner(t, shop.id)
		sys.setMapping(t, shop.id, keys[shop.id])
		id := sys.upload(t, shop.id, keys[shop.id], shop.csv(1))
		sys.waitIndexed(t, keys[shop.id], id)
		// The price-drop scenario pushes this file: every price cut by a fifth.
		if err := os.WriteFile(filepath.Join(fixtures, shop.id+"-cheaper.csv"), []byte(shop.csv(0.8)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A shop that allows a full upload to delete at most a fifth of its
	// catalog; the hold scenario uploads its catalog first, as the last
	// scenario, so the storefront's shops stay the seeded ones until then.
	holdShop := holdShop()
	keys[holdShop.id] = sys.createPartner(t, holdShop.id)
	sys.setMapping(t, holdShop.id, keys[holdShop.id])
	sys.call(t, http.MethodPut, "/v1/partners/"+holdShop.id+"/settings", keys[holdShop.id], "application/json",
		strings.NewReader(`{"max_delete_percent":20}`), nil)
	shrunk := holdShop
	shrunk.products = 3
	for name, data := range map[string]string{holdShop.id + ".csv": holdShop.csv(1), holdShop.id + "-shrunk.csv": shrunk.csv(1)} {
		if err := os.WriteFile(filepath.Join(fixtures, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	badRows, err := os.ReadFile("../examples/acme.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fixtures, "bad-rows.csv"), badRows, 0o644); err != nil {
		t.Fatal(err)
	}
	// The partner's own server, which a scheduled source fetches from.
	feedServer := httptest.NewServer(http.FileServer(http.Dir(fixtures)))
	defer feedServer.Close()

	shots, err := filepath.Abs(filepath.Join("browsertest", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, node, "run.mjs")
	cmd.Dir = "browsertest"
	cmd.Env = append(os.Environ(),
		"FEEDLINE_BASE="+sys.base,
		"FEEDLINE_CHROMIUM="+chromium,
		"FEEDLINE_PARTNER=acme",
		"FEEDLINE_PARTNER_KEY="+keys["acme"],
		"FEEDLINE_HOLD_PARTNER="+holdShop.id,
		"FEEDLINE_HOLD_PARTNER_KEY="+keys[holdShop.id],
		"FEEDLINE_SHOPPER_TOKEN="+sys.token(t, bin, "bob"),
		"FEEDLINE_OTHER_SHOPPER_TOKEN="+sys.token(t, bin, "carol"),
		"FEEDLINE_FIXTURES="+fixtures,
		"FEEDLINE_SOURCE_URL="+feedServer.URL+"/bad-rows.csv",
		"FEEDLINE_SCREENSHOTS="+shots,
	)
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("browser scenarios:\n%s", out.String())
	if err != nil {
		t.Fatalf("browser scenarios failed: %v\nfeedline log (tail):\n%s", err, tail(sys.logs.String(), 4000))
	}
}

// buildFeedline builds the binary into dir.
func buildFeedline(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "feedline")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "feedline/cmd/feedline").CombinedOutput(); err != nil {
		t.Fatalf("build feedline: %v\n%s", err, out)
	}
	return bin
}

// browserTools finds node, the scenarios' packages and Chromium.
func browserTools(t *testing.T) (node, chromium string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; .ci/run installs it", what)
		}
		t.Skipf("%s: skipping the browser scenarios", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := os.Stat("browsertest/node_modules/playwright-core"); err != nil {
		missing("web/browsertest has no node_modules (npm ci --prefix web/browsertest)")
	}
	chromium = os.Getenv("FEEDLINE_CHROMIUM")
	if chromium == "" {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				chromium = p
				break
			}
		}
	}
	if chromium == "" {
		missing("Chromium is not installed (apt-get install chromium)")
	}
	return node, chromium
}

// seedShop is a shop of the seeded catalog and how it makes its file.
type seedShop struct {
	id       string
	products int
	names    []string
}

// seedShops are enough products for several result pages and facets
// with different counts; one shop names its products in Korean.
func seedShops() []seedShop {
	return []seedShop{
		{"acme", 30, []string{"Wireless Earbuds", "Electric Kettle", "Bluetooth Speaker", "Desk Lamp"}},
		{"nordic", 8, []string{"무선 이어폰", "전기 주전자", "블루투스 스피커", "헤드폰"}},
	}
}

// holdShop's full upload of three of its ten products would delete 70% of
// its catalog, over the 20% it allows.
func holdShop() seedShop {
	return seedShop{"harbor", 10, []string{"Rain Jacket", "Canvas Tote", "Wool Scarf", "Leather Belt"}}
}

// csv is the shop's catalog with every price multiplied by scale.
func (s seedShop) csv(scale float64) string {
	var (
		seedBrands     = []string{"Sonic", "Acme", "Lumen"}
		seedCategories = []string{"Audio > Earbuds", "Home > Kitchen > Kettles", "Audio > Speakers", "Home > Lighting"}
		seedStock      = []string{"in stock", "in stock", "out of stock"}
	)
	var b strings.Builder
	b.WriteString("sku,name,brand,category,price,currency,stock,url,image\n")
	for i := range s.products {
		price := int64(float64(10000+i*1500) * scale)
		fmt.Fprintf(&b, "%s-%03d,%s %s %d,%s,%s,%d,KRW,%s,https://%s.example/p/%d,\n",
			strings.ToUpper(s.id[:2]), i, seedBrands[i%len(seedBrands)], s.names[i%len(s.names)], i,
			seedBrands[i%len(seedBrands)], seedCategories[i%len(seedCategories)], price, seedStock[i%len(seedStock)], s.id, i)
	}
	return b.String()
}

type serveProcess struct {
	base string
	logs *syncBuffer
}

// syncBuffer is the process's log, written by exec's copier while a
// failing test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs feedline serve on loopback and waits until it is ready.
func startServe(t *testing.T, bin, data string) *serveProcess {
	t.Helper()
	addr := freeAddr(t)
	p := &serveProcess{base: "http://" + addr, logs: &syncBuffer{}}
	// Scheduled fetches may reach the test's feed server on loopback.
	cmd := exec.Command(bin, "serve", "--data", data, "--http", addr, "--nats-listen", freeAddr(t), "--fetch-allow-private=true")
	cmd.Env = append(os.Environ(), "FEEDLINE_ADMIN_KEY="+testAdminKey, "FEEDLINE_TOKEN_KEY="+testTokenKey)
	cmd.Stderr = p.logs
	cmd.SysProcAttr = natstest.DieWithTest()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("feedline serve exited: %v\n%s", err, tail(p.logs.String(), 4000))
		default:
		}
		res, err := http.Get(p.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("feedline serve not ready after 60s:\n%s", tail(p.logs.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// call sends a request and decodes a 2xx JSON answer into out.
func (p *serveProcess) call(t *testing.T, method, path, key, contentType string, body io.Reader, out any) {
	t.Helper()
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

func (p *serveProcess) createPartner(t *testing.T, id string) string {
	var created struct {
		APIKey string `json:"api_key"`
	}
	p.call(t, http.MethodPost, "/v1/partners", testAdminKey, "application/json", strings.NewReader(`{"id":"`+id+`"}`), &created)
	return created.APIKey
}

func (p *serveProcess) setMapping(t *testing.T, partner, key string) {
	mapping, err := os.Open("../examples/acme-mapping.json")
	if err != nil {
		t.Fatal(err)
	}
	defer mapping.Close()
	p.call(t, http.MethodPut, "/v1/partners/"+partner+"/mapping", key, "application/json", mapping, nil)
}

func (p *serveProcess) upload(t *testing.T, partner, key, csv string) string {
	var up struct {
		UploadID string `json:"upload_id"`
	}
	p.call(t, http.MethodPost, "/v1/partners/"+partner+"/uploads?mode=full&filename="+partner+".csv", key, "text/csv", strings.NewReader(csv), &up)
	return up.UploadID
}

// waitIndexed waits until the upload is done and every accepted product indexed.
func (p *serveProcess) waitIndexed(t *testing.T, key, id string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st struct {
			State  string `json:"state"`
			Counts struct {
				Accepted int64 `json:"accepted"`
				Indexed  int64 `json:"indexed"`
			} `json:"counts"`
		}
		p.call(t, http.MethodGet, "/v1/uploads/"+id, key, "", nil, &st)
		if st.State == "done" && st.Counts.Indexed == st.Counts.Accepted && st.Counts.Accepted > 0 {
			return
		}
		if st.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("upload %s: state %s, %d accepted, %d indexed", id, st.State, st.Counts.Accepted, st.Counts.Indexed)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// token asks the binary for a shopper's token, as a developer would.
func (p *serveProcess) token(t *testing.T, bin, user string) string {
	t.Helper()
	cmd := exec.Command(bin, "token", "--user", user)
	cmd.Env = append(os.Environ(), "FEEDLINE_TOKEN_KEY="+testTokenKey)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("feedline token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

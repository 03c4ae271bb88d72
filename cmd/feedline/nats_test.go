package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The embedded NATS port of a running feedline serve refuses a client
// without credentials; `feedline nats credentials` prints the ones that
// work, a worker on the same data directory finds them itself, and a worker
// elsewhere is refused with a clear error until it is given them.
func TestEmbeddedNATSPortRequiresCredentials(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs feedline processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	natsAddr := freeAddr(t)
	httpAddr := freeAddr(t)
	startFeedline(t, bin, httpAddr, "serve", "--data", dir, "--http", httpAddr, "--nats-listen", natsAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if nc, err := nats.Connect("nats://" + natsAddr); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected to the embedded NATS port")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a client without credentials: %v, want an authorization violation", err)
	}

	credentials := func(format string) string {
		out, err := exec.CommandContext(ctx, bin, "nats", "credentials", "--data", dir, "--nats-listen", natsAddr, "--format", format).Output()
		if err != nil {
			t.Fatalf("feedline nats credentials --format %s: %v", format, err)
		}
		return string(out)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(credentials("env")), "\n") {
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		vars[k] = v
	}
	if vars["NATS_URL"] != "nats://"+natsAddr || vars["NATS_USER"] == "" || vars["NATS_PASSWORD"] == "" {
		t.Fatalf("credentials as environment: %v", vars)
	}
	nc, err := nats.Connect(vars["NATS_URL"], nats.UserInfo(vars["NATS_USER"], vars["NATS_PASSWORD"]))
	if err != nil {
		t.Fatalf("the printed credentials: %v", err)
	}
	js, _ := jetstream.New(nc)
	info, err := js.AccountInfo(ctx)
	if err != nil || info.Streams < 6 {
		t.Errorf("JetStream with the printed credentials: %+v, %v", info, err)
	}
	nc.Close()
	nc, err = nats.Connect(strings.TrimSpace(credentials("url")))
	if err != nil {
		t.Fatalf("the printed URL: %v", err)
	}
	nc.Close()
	var cliContext struct{ URL, User, Password string }
	if err := json.Unmarshal([]byte(credentials("context")), &cliContext); err != nil || cliContext.URL != vars["NATS_URL"] ||
		cliContext.User != vars["NATS_USER"] || cliContext.Password != vars["NATS_PASSWORD"] {
		t.Errorf("nats CLI context %+v: %v", cliContext, err)
	}

	// A worker on the same data directory joins without settings.
	same := freeAddr(t)
	w := startFeedline(t, bin, same, "worker", "--stages", "normalise", "--data", dir, "--nats", "nats://"+natsAddr, "--http", same)
	w.terminate(t)

	// One on another data directory is refused, and told what to give.
	cmd := exec.CommandContext(ctx, bin, "worker", "--stages", "normalise", "--data", t.TempDir(), "--nats", "nats://"+natsAddr, "--http", "")
	cmd.Env = withoutNATSSettings()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a worker without credentials started:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(string(out)), "authorization violation") || !strings.Contains(string(out), "FEEDLINE_NATS_USER") {
		t.Errorf("a worker without credentials said:\n%s", out)
	}
	given := freeAddr(t)
	w = startFeedlineEnv(t, bin, given, append(withoutNATSSettings(), "FEEDLINE_NATS_USER="+vars["NATS_USER"], "FEEDLINE_NATS_PASSWORD="+vars["NATS_PASSWORD"]),
		"worker", "--stages", "normalise", "--data", t.TempDir(), "--nats", "nats://"+natsAddr, "--http", given)
	w.terminate(t)
}

// withoutNATSSettings is the test's environment less any FEEDLINE_NATS_*.
func withoutNATSSettings() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FEEDLINE_NATS") {
			env = append(env, kv)
		}
	}
	return env
}

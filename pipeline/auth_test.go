package pipeline

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func connectCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The embedded server's TCP port is open to every local process; only a
// client with the data directory's credentials gets in.
func TestEmbeddedServerRefusesClientsWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	b, err := Connect(connectCtx(t), BusConfig{DataDir: dir, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Declare(connectCtx(t), testTopology()); err != nil {
		t.Fatalf("the in-process connection signs in: %v", err)
	}
	url := b.ClientURL()
	if strings.Contains(url, "@") {
		t.Fatalf("ClientURL %q carries credentials; it is logged", url)
	}

	for name, opts := range map[string][]nats.Option{
		"no credentials": nil,
		"wrong password": {nats.UserInfo(embeddedUser, "guess")},
		"a token":        {nats.Token("feedline")},
	} {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected to the embedded server", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}

	creds, err := ReadEmbeddedCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds.Password) < 40 {
		t.Errorf("password %d characters, want 32 random bytes", len(creds.Password))
	}
	for path, want := range map[string]os.FileMode{EmbeddedCredentialsPath(dir): 0o600, filepath.Dir(EmbeddedCredentialsPath(dir)): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
	}
	nc, err := nats.Connect(url, nats.UserInfo(creds.User, creds.Password))
	if err != nil {
		t.Fatalf("the generated credentials: %v", err)
	}
	js, err := b.js.AccountInfo(connectCtx(t))
	if err != nil || js.Streams == 0 {
		t.Errorf("account info %+v: %v", js, err)
	}
	nc.Close()

	// Another process on the same data directory finds the credentials
	// itself; one on another data directory is refused until given them.
	same, err := Connect(connectCtx(t), BusConfig{URL: url, DataDir: dir, Logger: quietLog()})
	if err != nil {
		t.Fatalf("a client on the same data directory: %v", err)
	}
	if err := same.Ready(connectCtx(t)); err != nil {
		t.Error(err)
	}
	same.Close()
	if other, err := Connect(connectCtx(t), BusConfig{URL: url, DataDir: t.TempDir(), Logger: quietLog()}); err == nil {
		other.Close()
		t.Error("a client on another data directory joined without credentials")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a client without credentials: %v, want an authorization violation", err)
	}
	given, err := Connect(connectCtx(t), BusConfig{URL: url, DataDir: t.TempDir(), Auth: ClientAuth{User: creds.User, Password: creds.Password}, Logger: quietLog()})
	if err != nil {
		t.Fatalf("a client given the credentials: %v", err)
	}
	given.Close()
	withURL := strings.Replace(url, "nats://", "nats://"+creds.User+":"+creds.Password+"@", 1)
	inURL, err := Connect(connectCtx(t), BusConfig{URL: withURL, Logger: quietLog()})
	if err != nil {
		t.Fatalf("credentials in the URL: %v", err)
	}
	if got := inURL.ClientURL(); strings.Contains(got, creds.Password) {
		t.Errorf("ClientURL %q shows the password", got)
	}
	inURL.Close()
}

// The credentials are made once and kept: a restart on the same data
// directory lets the same clients in.
func TestEmbeddedCredentialsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Connect(connectCtx(t), BusConfig{DataDir: dir, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := ReadEmbeddedCredentials(dir)
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err = Connect(connectCtx(t), BusConfig{DataDir: dir, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	second, err := ReadEmbeddedCredentials(dir)
	if err != nil || second != first {
		t.Errorf("credentials after a restart %+v (%v), want the first ones", second, err)
	}
	nc, err := nats.Connect(b.ClientURL(), nats.UserInfo(first.User, first.Password))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

func TestEmbeddedCredentialsAreRefusedWhenOthersMayReadThem(t *testing.T) {
	dir := t.TempDir()
	if _, err := embeddedCredentials(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(EmbeddedCredentialsPath(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Connect(connectCtx(t), BusConfig{DataDir: dir, Logger: quietLog()})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a credentials file others may read: %v, want a refusal saying chmod 600", err)
	}
	if err := os.WriteFile(EmbeddedCredentialsPath(dir), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(EmbeddedCredentialsPath(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEmbeddedCredentials(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged credentials file: %v", err)
	}
}

func TestClientAuthRefusesWhatCannotWork(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t)
	for _, tc := range []struct {
		name string
		auth ClientAuth
		urls string
		want string
	}{
		{"user without password", ClientAuth{User: "ingest"}, "", "no password"},
		{"password without user", ClientAuth{Password: "pw"}, "", "without a user"},
		{"two identities", ClientAuth{User: "ingest", Password: "pw", Token: "t"}, "", "one way"},
		{"user in the URL and apart", ClientAuth{User: "ingest", Password: "pw"}, "nats://a:b@nats-1:4222", "one way"},
		{"certificate without key", ClientAuth{CertFile: pki.clientCert}, "", "without its key"},
		{"key without certificate", ClientAuth{KeyFile: pki.clientKey}, "", "without its certificate"},
		{"certificate with another's key", ClientAuth{CertFile: pki.clientCert, KeyFile: pki.serverKey}, "", "key"},
		{"creds file missing", ClientAuth{CredsFile: filepath.Join(dir, "nope.creds")}, "", "nope.creds"},
		{"creds file without a JWT", ClientAuth{CredsFile: garbage}, "", "no user JWT"},
		{"nkey file missing", ClientAuth{NKeyFile: filepath.Join(dir, "nope.nk")}, "", "nope.nk"},
		{"nkey file without a seed", ClientAuth{NKeyFile: garbage}, "", "no user seed"},
		{"CA file without a certificate", ClientAuth{CAFile: garbage}, "", "no PEM certificate"},
	} {
		err := tc.auth.Check(tc.urls)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if err := (ClientAuth{User: "ingest", Password: "pw", CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey}).Check("nats://nats-1:4222"); err != nil {
		t.Errorf("a user with TLS: %v", err)
	}
}

func TestEmbeddedCredentialsStayOnThisMachine(t *testing.T) {
	for urls, want := range map[string]bool{
		"nats://127.0.0.1:4222":                    true,
		"127.0.0.1:4222":                           true,
		"nats://localhost:4222,nats://[::1]:4222":  true,
		"nats://127.0.0.1:4222,nats://nats-1:4222": false,
		"nats://10.0.0.7:4222":                     false,
		"":                                         false,
	} {
		if got := allLoopback(urls); got != want {
			t.Errorf("allLoopback(%q) = %v", urls, got)
		}
	}
}

// runServer starts a nats-server with JetStream on a loopback port.
func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Every way to sign in to an outside server, against a real server that
// requires it.
func TestOutsideNATSSignIn(t *testing.T) {
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t)
	serverCert, err := tls.LoadX509KeyPair(pki.serverCert, pki.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pki.caCert)

	for _, tc := range []struct {
		name string
		opts server.Options
		auth ClientAuth
	}{
		{"user and password", server.Options{Users: []*server.User{{Username: "ingest", Password: "s3cret"}}}, ClientAuth{User: "ingest", Password: "s3cret"}},
		{"token", server.Options{Authorization: "tok3n"}, ClientAuth{Token: "tok3n"}},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}}, ClientAuth{NKeyFile: seedFile}},
		{"TLS with a client certificate", server.Options{
			Users: []*server.User{{Username: "ingest", Password: "s3cret"}},
			TLS:   true, TLSVerify: true,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		}, ClientAuth{User: "ingest", Password: "s3cret", CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := runServer(t, &tc.opts)
			url := ns.ClientURL()
			if _, err := Connect(connectCtx(t), BusConfig{URL: url, DataDir: t.TempDir(), Logger: quietLog()}); err == nil {
				t.Fatal("connected without signing in")
			}
			if err := tc.auth.Check(url); err != nil {
				t.Fatal(err)
			}
			b, err := Connect(connectCtx(t), BusConfig{URL: url, Auth: tc.auth, Logger: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Declare(connectCtx(t), testTopology()); err != nil {
				t.Fatal(err)
			}
			if err := b.Ready(connectCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("TLS without a client certificate", func(t *testing.T) {
		ns := runServer(t, &server.Options{
			TLS: true, TLSVerify: true,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		})
		if b, err := Connect(connectCtx(t), BusConfig{URL: ns.ClientURL(), Auth: ClientAuth{CAFile: pki.ca}, Logger: quietLog()}); err == nil {
			b.Close()
			t.Fatal("connected without the client certificate the server requires")
		}
	})
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	caCert                                           *x509.Certificate
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, kind string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "feedline test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := testPKI{caCert: caCert, ca: write("ca.pem", "CERTIFICATE", caDER)}
	leaf := func(serial int64, usage x509.ExtKeyUsage, certName, keyName string) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: certName},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(certName+".pem", "CERTIFICATE", der), write(keyName, "EC PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = leaf(2, x509.ExtKeyUsageServerAuth, "server", "server-key.pem")
	p.clientCert, p.clientKey = leaf(3, x509.ExtKeyUsageClientAuth, "client", "client-key.pem")
	return p
}

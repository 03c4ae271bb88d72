package pipeline

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ClientAuth is how feedline signs in to an outside NATS server: at most one
// identity (user and password, token, NKey seed file or .creds file), and
// optionally TLS with a CA and a client certificate.
type ClientAuth struct {
	User, Password string
	Token          string
	NKeyFile       string // file holding a user NKey seed (SU...)
	CredsFile      string // .creds file: user JWT and NKey seed
	CAFile         string // PEM CA certificates the server's certificate is checked against
	CertFile       string // PEM client certificate
	KeyFile        string // PEM private key of CertFile
}

// IsZero reports whether nothing is set.
func (a ClientAuth) IsZero() bool { return a == ClientAuth{} }

// identities names the ways of signing in that are set.
func (a ClientAuth) identities() []string {
	var ids []string
	if a.User != "" || a.Password != "" {
		ids = append(ids, "user and password")
	}
	if a.Token != "" {
		ids = append(ids, "token")
	}
	if a.NKeyFile != "" {
		ids = append(ids, "NKey seed file")
	}
	if a.CredsFile != "" {
		ids = append(ids, "creds file")
	}
	return ids
}

// Check refuses combinations that cannot work and files that cannot be
// read, so a wrong setting fails at start with its name rather than at the
// first reconnect. urls are the comma-separated server URLs.
func (a ClientAuth) Check(urls string) error {
	ids := a.identities()
	inURL := urlsWithUser(urls)
	if len(inURL) > 0 {
		ids = append(ids, "user:password in the URL")
	}
	if len(ids) > 1 {
		return fmt.Errorf("nats: sign in one way, not with %s together", strings.Join(ids, " and "))
	}
	switch {
	case a.User != "" && a.Password == "":
		return fmt.Errorf("nats user %q has no password", a.User)
	case a.User == "" && a.Password != "":
		return errors.New("a nats password is set without a user")
	}
	if a.NKeyFile != "" {
		b, err := os.ReadFile(a.NKeyFile)
		if err != nil {
			return fmt.Errorf("nats nkey seed file: %w", err)
		}
		if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
			return fmt.Errorf("nats nkey seed file %s holds no user seed (SU...): %w", a.NKeyFile, err)
		}
	}
	if a.CredsFile != "" {
		b, err := os.ReadFile(a.CredsFile)
		if err != nil {
			return fmt.Errorf("nats creds file: %w", err)
		}
		if jwt, _ := nkeys.ParseDecoratedJWT(b); !strings.HasPrefix(jwt, "eyJ") {
			return fmt.Errorf("nats creds file %s holds no user JWT", a.CredsFile)
		}
		if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
			return fmt.Errorf("nats creds file %s holds no user seed: %w", a.CredsFile, err)
		}
	}
	if a.CAFile != "" {
		b, err := os.ReadFile(a.CAFile)
		if err != nil {
			return fmt.Errorf("nats CA file: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("nats CA file %s holds no PEM certificate", a.CAFile)
		}
	}
	switch {
	case a.CertFile != "" && a.KeyFile == "":
		return errors.New("a nats client certificate is set without its key")
	case a.CertFile == "" && a.KeyFile != "":
		return errors.New("a nats client key is set without its certificate")
	case a.CertFile != "":
		if _, err := tls.LoadX509KeyPair(a.CertFile, a.KeyFile); err != nil {
			return fmt.Errorf("nats client certificate %s and key %s: %w", a.CertFile, a.KeyFile, err)
		}
	}
	return nil
}

// options are the nats.go options that carry a.
func (a ClientAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	case a.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed file %s: %w", a.NKeyFile, err)
		}
		opts = append(opts, o)
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.CAFile != "" {
		opts = append(opts, nats.RootCAs(a.CAFile))
	}
	if a.CertFile != "" {
		opts = append(opts, nats.ClientCert(a.CertFile, a.KeyFile))
	}
	return opts, nil
}

// splitURLs parses comma-separated NATS URLs; a bare host:port is nats://.
func splitURLs(urls string) []*url.URL {
	var out []*url.URL
	for _, raw := range strings.Split(urls, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		if u, err := url.Parse(raw); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// urlsWithUser are the URLs among urls that carry user information.
func urlsWithUser(urls string) []*url.URL {
	var out []*url.URL
	for _, u := range splitURLs(urls) {
		if u.User != nil {
			out = append(out, u)
		}
	}
	return out
}

// allLoopback reports whether every URL names this machine.
func allLoopback(urls string) bool {
	us := splitURLs(urls)
	for _, u := range us {
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return len(us) > 0
}

// EmbeddedCredentials sign in to the embedded server. They are made at its
// first start and kept in the data directory, readable by its owner only.
type EmbeddedCredentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// embeddedUser is the one user of the embedded server: every feedline
// process on the data directory and the operator's tools.
const embeddedUser = "feedline"

// EmbeddedCredentialsPath is where the embedded server's credentials live.
func EmbeddedCredentialsPath(dataDir string) string {
	return filepath.Join(dataDir, "nats", "credentials.json")
}

// ReadEmbeddedCredentials reads the credentials of the embedded server of
// dataDir. A missing file is fs.ErrNotExist; one others may read is refused.
func ReadEmbeddedCredentials(dataDir string) (EmbeddedCredentials, error) {
	path := EmbeddedCredentialsPath(dataDir)
	var c EmbeddedCredentials
	fi, err := os.Stat(path)
	if err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return c, fmt.Errorf("nats credentials %s may be read by others (mode %04o); chmod 600 it", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.User == "" || c.Password == "" {
		return EmbeddedCredentials{}, fmt.Errorf("nats credentials %s are damaged (want JSON with user and password); delete the file to make new ones", path)
	}
	return c, nil
}

// embeddedCredentials reads the data directory's credentials, making them
// on the first start: written to a private temporary file and linked into
// place, so a reader never sees half a file and two starts agree.
func embeddedCredentials(dataDir string) (EmbeddedCredentials, error) {
	c, err := ReadEmbeddedCredentials(dataDir)
	if !errors.Is(err, fs.ErrNotExist) {
		return c, err
	}
	path := EmbeddedCredentialsPath(dataDir)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	c = EmbeddedCredentials{User: embeddedUser, Password: base64.RawURLEncoding.EncodeToString(secret)}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return c, err
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*") // mode 0600
	if err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return ReadEmbeddedCredentials(dataDir) // another start made them first
	} else if err != nil {
		return c, fmt.Errorf("nats credentials: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return c, nil
}

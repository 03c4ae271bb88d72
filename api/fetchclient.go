package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// A fetch is a request a partner points feedline at, so feedline must not
// be made to reach what only it can reach. The dialer checks every address
// it connects to, after the name was resolved and on every redirect, so a
// name that resolves to a private address (DNS rebinding included) is
// refused as a private address is.
var (
	// Link-local addresses hold cloud metadata services: never fetched.
	linkLocal = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")}
	// Private and special addresses: fetched only when the operator allows.
	privateRanges = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("224.0.0.0/4"), // multicast
		netip.MustParsePrefix("240.0.0.0/4"), // reserved, broadcast
		netip.MustParsePrefix("::/128"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("ff00::/8"),
	}
)

// refusedAddressError is a connection the guard did not allow.
type refusedAddressError struct {
	addr netip.Addr
	why  string
}

func (e *refusedAddressError) Error() string {
	return fmt.Sprintf("address %s is %s", e.addr, e.why)
}

// addressGuard decides which addresses a fetch may connect to.
type addressGuard struct {
	allowPrivate bool
}

func (g addressGuard) check(ip netip.Addr) error {
	ip = ip.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	for _, p := range linkLocal {
		if p.Contains(ip) {
			return &refusedAddressError{ip, "link-local (where cloud metadata services answer); feedline never fetches from it"}
		}
	}
	if g.allowPrivate {
		return nil
	}
	for _, p := range privateRanges {
		if p.Contains(ip) {
			return &refusedAddressError{ip, "a loopback, private or reserved address; fetching from those is off (--fetch-allow-private)"}
		}
	}
	return nil
}

// control is the dialer's hook: address is the resolved ip:port about to
// be connected to.
func (g addressGuard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	return g.check(ip)
}

// maxRedirects a fetch follows.
const maxRedirects = 5

// newFetchClient makes the HTTP client of fetches: every connection through
// the guard, no proxy (a proxy would connect on feedline's behalf past the
// guard), http and https only on redirects, bodies as the server sends them
// (a gzip file stays one; ingest unpacks it).
func newFetchClient(g addressGuard) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("a redirect to %s, which is not http(s)", req.URL.Redacted())
		}
		return nil
	}}
}

// fetchReason says why a request failed, for the partner: the address
// refused, the name that does not resolve, the certificate, the timeout.
func fetchReason(err error, timeout time.Duration) string {
	var refused *refusedAddressError
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var ue *url.Error
	where := ""
	if errors.As(err, &ue) {
		where = ue.URL + ": "
	}
	switch {
	case errors.As(err, &refused):
		return where + "refused: " + refused.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%sno complete answer within %s", where, timeout)
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return fmt.Sprintf("%sthe host name %s does not resolve", where, dns.Name)
		}
		return fmt.Sprintf("%sthe host name %s could not be resolved: %s", where, dns.Name, dns.Err)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return where + "TLS: the server's certificate is not valid: " + innermost(err)
	}
	if ue != nil {
		return where + innermost(ue.Err)
	}
	return err.Error()
}

// innermost is the message of the deepest wrapped error.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

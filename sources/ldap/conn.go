package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// endpoint is a server the source talks to: the configured one, or one a
// search continuation reference named.
type endpoint struct {
	url      *url.URL // scheme and host; never a userinfo
	shown    string   // scheme://host[:port], as errors and logs name it
	startTLS bool
}

// hostPort is the address to dial, with the scheme's default port.
func (ep endpoint) hostPort() string {
	port := ep.url.Port()
	if port == "" {
		port = goldap.DefaultLdapPort
		if ep.url.Scheme == "ldaps" {
			port = goldap.DefaultLdapsPort
		}
	}
	return net.JoinHostPort(ep.url.Hostname(), port)
}

// home is the configured server.
func (s *Source) home() endpoint {
	return endpoint{url: s.cfg.server, shown: s.cfg.shownURL, startTLS: s.cfg.startTLS}
}

// connect dials the configured server, sets up TLS as configured and
// binds (see connectTo).
func (s *Source) connect(ctx context.Context) (goldap.Client, error) {
	return s.connectTo(ctx, s.home())
}

// connectTo dials ep, sets up TLS and binds with the configured
// credentials. The connection stays tied to ctx until it is closed (see
// dialTied).
func (s *Source) connectTo(ctx context.Context, ep endpoint) (goldap.Client, error) {
	conn, untie, err := dialTied(ctx, s.cfg.timeout, ep, func(raw net.Conn) (*wireConn, error) {
		return s.setUp(ep, raw)
	})
	if err != nil {
		return nil, err
	}
	conn.untie = untie
	return conn, nil
}

// dialTied dials ep and hands the socket to setUp, which makes it a bound
// LDAP connection or closes it. The socket stays tied to ctx until untie
// is called: when ctx ends, it is closed at once, which breaks off
// whatever the connection is waiting for (a handshake, the bind, a search
// page) instead of letting it run to the operation timeout.
func dialTied[C io.Closer](ctx context.Context, timeout time.Duration, ep endpoint, setUp func(net.Conn) (C, error)) (conn C, untie func() bool, err error) {
	var none C
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", ep.hostPort())
	if err != nil {
		return none, nil, opError(ep.shown, "connect", "", err)
	}
	// No operation of the connection takes a context: closing the socket
	// is what interrupts one.
	untie = context.AfterFunc(ctx, func() { raw.Close() })
	conn, err = setUp(raw)
	if ctxErr := ctx.Err(); ctxErr != nil {
		untie()
		if err == nil {
			conn.Close()
		}
		return none, nil, opError(ep.shown, "connect", "", ctxErr)
	}
	if err != nil {
		untie()
		return none, nil, err
	}
	return conn, untie, nil
}

// setUp makes raw an encrypted (as configured) and bound LDAP connection,
// or closes it.
func (s *Source) setUp(ep endpoint, raw net.Conn) (*wireConn, error) {
	raw, err := s.ldapsHandshake(ep, raw)
	if err != nil {
		return nil, err
	}
	conn := newWireConn(raw, s.cfg.timeout)
	if ep.startTLS {
		if err := conn.StartTLS(s.tlsConfig(ep)); err != nil {
			conn.Close()
			return nil, opError(ep.shown, "StartTLS", "", err)
		}
	}
	if s.cfg.bindDN != "" {
		if err := conn.Bind(s.cfg.bindDN, s.cfg.bindPassword); err != nil {
			conn.Close()
			return nil, opError(ep.shown, "bind as "+s.cfg.bindDN, "", err)
		}
	}
	return conn, nil
}

// ldapsHandshake returns raw as a TLS connection, handshake done, when ep
// is an ldaps:// server, and raw itself otherwise. It closes raw when the
// handshake fails.
func (s *Source) ldapsHandshake(ep endpoint, raw net.Conn) (net.Conn, error) {
	if ep.url.Scheme != "ldaps" {
		return raw, nil
	}
	tc := tls.Client(raw, s.tlsConfig(ep))
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, opError(ep.shown, "TLS handshake", "", err)
	}
	return tc, nil
}

func (s *Source) tlsConfig(ep endpoint) *tls.Config {
	return &tls.Config{
		ServerName:         ep.url.Hostname(),
		MinVersion:         tls.VersionTLS12,
		RootCAs:            s.cfg.rootCAs,  // nil: the system pool
		InsecureSkipVerify: s.cfg.insecure, // #nosec G402 -- only when configured, warned at startup
	}
}

// opError names the server shown, the operation and the base DN, and says
// what to check for the common failures.
func opError(shown, op, base string, err error) error {
	where := shown
	if base != "" {
		where += fmt.Sprintf(" (base %q)", base)
	}
	if hint := hintFor(err); hint != "" {
		return fmt.Errorf("ldap %s: %s: %w; %s", where, op, err, hint)
	}
	return fmt.Errorf("ldap %s: %s: %w", where, op, err)
}

func hintFor(err error) string {
	var (
		unknownCA    x509.UnknownAuthorityError
		invalidCert  x509.CertificateInvalidError
		hostname     x509.HostnameError
		verification *tls.CertificateVerificationError
		notTLS       tls.RecordHeaderError
		netErr       net.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ""
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials):
		return "check bind_dn and the bind password"
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return "check that the base_dn exists on the server"
	case goldap.IsErrorWithCode(err, goldap.LDAPResultReferral):
		return "the server does not hold this base_dn; check base_dn and url"
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInsufficientAccessRights):
		return "check that the bind account may read this subtree"
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultConfidentialityRequired, goldap.LDAPResultStrongAuthRequired):
		return "the server requires an encrypted connection; use ldaps:// or start_tls: true"
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultSizeLimitExceeded, goldap.LDAPResultAdminLimitExceeded):
		return "the server capped a paged search; check that the bind account's paged results are not limited (OpenLDAP size.prtotal, AD MaxPageSize)"
	case goldap.IsErrorWithCode(err, goldap.LDAPResultFilterError):
		return "check users.filter and groups.filter"
	case errors.As(err, &unknownCA), errors.As(err, &invalidCert), errors.As(err, &hostname), errors.As(err, &verification):
		return "check ca_file (it must hold the CA that signed the server certificate) and that the url's host is in the certificate"
	case errors.As(err, &notTLS), errors.Is(err, io.EOF):
		// The wire client reports a plain hang-up as errServerClosed, so
		// a bare EOF comes from a TLS handshake the server walked out of.
		return "the server does not speak TLS on this port; check the url (ldaps:// port) or use ldap:// with start_tls"
	case errors.Is(err, errServerClosed):
		// Nothing was answered yet: the likeliest cause is a TLS port
		// spoken to in clear, or the reverse.
		return "check that the url's scheme fits the port (ldaps:// for a TLS port, ldap:// otherwise) and the server's log"
	case errors.Is(err, errConnectionLost):
		return "it may have restarted; retry, and check the server's log if it happens again"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "check the url's host and port and that the server is running"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "the server did not answer in time; check the url, the network and ldap.timeout"
	}
	return ""
}

package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	goldap "github.com/go-ldap/ldap/v3"
)

// connect dials the server, sets up TLS as configured and binds. The
// connection stays tied to ctx until it is closed: when ctx ends, the
// socket is closed at once, which breaks off whatever the connection is
// waiting for (a handshake, the bind, a search page) instead of letting
// it run to the operation timeout.
func (s *Source) connect(ctx context.Context) (goldap.Client, error) {
	u := s.cfg.server
	port := u.Port()
	if port == "" {
		port = goldap.DefaultLdapPort
		if u.Scheme == "ldaps" {
			port = goldap.DefaultLdapsPort
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)

	var tlsConf *tls.Config
	if u.Scheme == "ldaps" || s.cfg.startTLS {
		var err error
		if tlsConf, err = s.tlsConfig(); err != nil {
			return nil, err
		}
	}

	d := net.Dialer{Timeout: s.cfg.timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, s.opError("connect", "", err)
	}
	// No operation of the connection takes a context: closing the socket
	// is what interrupts one.
	untie := context.AfterFunc(ctx, func() { raw.Close() })
	conn, err := s.setUp(raw, tlsConf)
	if ctxErr := ctx.Err(); ctxErr != nil {
		untie()
		if err == nil {
			conn.Close()
		}
		return nil, s.opError("connect", "", ctxErr)
	}
	if err != nil {
		untie()
		return nil, err
	}
	conn.untie = untie
	return conn, nil
}

// setUp makes raw an encrypted (as configured) and bound LDAP connection,
// or closes it.
func (s *Source) setUp(raw net.Conn, tlsConf *tls.Config) (*wireConn, error) {
	if s.cfg.server.Scheme == "ldaps" {
		tc := tls.Client(raw, tlsConf)
		hsCtx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		err := tc.HandshakeContext(hsCtx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, s.opError("TLS handshake", "", err)
		}
		raw = tc
	}
	conn := newWireConn(raw, s.cfg.timeout)
	if s.cfg.startTLS {
		if err := conn.StartTLS(tlsConf); err != nil {
			conn.Close()
			return nil, s.opError("StartTLS", "", err)
		}
	}
	if s.cfg.bindDN != "" {
		if err := conn.Bind(s.cfg.bindDN, s.cfg.bindPassword); err != nil {
			conn.Close()
			return nil, s.opError("bind as "+s.cfg.bindDN, "", err)
		}
	}
	return conn, nil
}

func (s *Source) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{
		ServerName:         s.cfg.server.Hostname(),
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.cfg.insecure, // #nosec G402 -- only when configured, warned at startup
	}
	if s.cfg.caFile == "" {
		return conf, nil // nil RootCAs: the system pool
	}
	pem, err := os.ReadFile(s.cfg.caFile)
	if err != nil {
		return nil, fmt.Errorf("ldap %s: read ca_file: %w", s.cfg.shownURL, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ldap %s: ca_file %s holds no PEM certificate", s.cfg.shownURL, s.cfg.caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// opError names the server, the operation and the base DN, and says what
// to check for the common failures.
func (s *Source) opError(op, base string, err error) error {
	where := s.cfg.shownURL
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
		return "check that the url's scheme fits the port (ldaps:// for a TLS port, ldap:// otherwise) and the server's log"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "check the url's host and port and that the server is running"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "the server did not answer in time; check the url, the network and ldap.timeout"
	}
	return ""
}

// Package ldap is the LDAP / Active Directory source: it reads users and
// groups with paged searches (RFC 2696) over ldap://, StartTLS or ldaps://,
// resolves group membership in memory and returns one whole Snapshot.
package ldap

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Source reads one LDAP directory.
type Source struct {
	name string
	cfg  settings
	log  *zap.Logger
	// dial connects and binds. Tests replace it to hand in a wrapped or fake
	// ldap.Client; every search goes through the connection it returns.
	dial func(ctx context.Context) (goldap.Client, error)
	// dialTo connects and binds to a server a continuation reference
	// names (referrals: follow); tests replace it too.
	dialTo func(ctx context.Context, ep endpoint) (goldap.Client, error)
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Checker = (*Source)(nil)
)

// settings is the LDAP block with every fallback applied and every value
// parsed once.
type settings struct {
	// shownURL is the server as errors and logs name it: scheme, host and
	// port only. A user or password written into ldap.url (which config
	// validation refuses) is never shown.
	shownURL     string
	server       *url.URL // the parsed ldap.url, without its userinfo
	startTLS     bool
	caFile       string
	rootCAs      *x509.CertPool // caFile's certificates; nil: the system pool
	insecure     bool
	bindDN       string
	bindPassword string
	ad           bool
	pageSize     uint32
	referrals    string // referralsFail, referralsFollow or referralsIgnore
	timeout      time.Duration
	users        userSearch
	groups       groupSearch
}

type userSearch struct {
	base, filter string
	scope        int
	idAttr       string
	emailAttr    string
	nameAttr     string
	phoneAttr    string
	uidAttr      string
}

type groupSearch struct {
	base, filter string
	scope        int
	idAttr       string
	nameAttr     string
	memberAttr   string
	ownerAttr    string // "": owners are not read
	nested       bool
	maxDepth     int
	inChain      bool
	chainBase    string // where in-chain searches run: the domain of users.base_dn
}

// New builds an LDAP source from its *Config; it is a sources.Factory.
func New(name string, settings any, opts sources.Options) (sources.Source, error) {
	return newSource(name, settings, opts.Logger())
}

// newSource builds the source; settings is its *Config.
func newSource(name string, settings any, log *zap.Logger) (*Source, error) {
	cfg, err := config.Settings[*Config](name, "ldap", settings)
	if err != nil {
		return nil, err
	}
	st := resolve(cfg)
	if cfg.CAFile != "" {
		// Read once here, not on every connection: a fetch opens two, and
		// referrals more.
		pem, err := config.ReadFile(cfg.CAFile, maxCAFileSize)
		if err != nil {
			return nil, fmt.Errorf("source %q: ldap.ca_file: %w", name, err)
		}
		st.rootCAs = x509.NewCertPool()
		if !st.rootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("source %q: ldap.ca_file %q holds no PEM certificate", name, cfg.CAFile)
		}
	}
	if st.insecure {
		log.Warn("insecure_skip_verify is set: the LDAP server certificate is not verified", zap.String("url", st.shownURL))
	}
	s := &Source{name: name, cfg: st, log: log}
	s.dial, s.dialTo = s.connect, s.connectTo
	return s, nil
}

// Name returns the configured source name.
func (s *Source) Name() string { return s.name }

// Check connects and binds, nothing more.
func (s *Source) Check(ctx context.Context) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	// The bind succeeded, which is what is checked; closing only says
	// goodbye, and fails when ctx ended since (the socket is then closed).
	_ = conn.Close()
	return nil
}

// Fetch reads every configured user and group. It returns an error and no
// snapshot when anything fails part way: an entry it cannot read, or ctx
// ending, which closes the connections at once (see connect).
//
// The user and the group search run at once, each on a connection of its
// own: the server answers both in the time of the longer one.
func (s *Source) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	return s.fetch(ctx, nil)
}

// fetch is Fetch, keeping the entries read in kept when set.
func (s *Source) fetch(ctx context.Context, kept *memo) (*sources.Snapshot, error) {
	// stop ends every connection of the fetch (connect ties them to ctx):
	// the first failure breaks off the rest.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var users, groups goldap.Client
	err := all(stop,
		func() (err error) { users, err = s.dial(ctx); return err },
		func() (err error) { groups, err = s.dial(ctx); return err })
	for _, c := range []goldap.Client{users, groups} {
		if c != nil {
			defer c.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	return s.fetchWith(ctx, stop, users, groups, kept)
}

// all runs each function at once and waits for them. The first error
// calls stop, so that the others end early. The error returned is the
// earliest function's (in fns order, so the same failures always give the
// same error) that failed of its own accord; an error that wraps
// context.Canceled is the fallout of stop, or of the caller cancelling, and
// is returned only when there is no other.
func all(stop context.CancelFunc, fns ...func() error) error {
	var (
		wg   sync.WaitGroup
		once sync.Once
		errs = make([]error, len(fns))
	)
	for i, fn := range fns {
		wg.Go(func() {
			if errs[i] = fn(); errs[i] != nil {
				once.Do(stop)
			}
		})
	}
	wg.Wait()
	var fallout error
	for _, err := range errs {
		switch {
		case err == nil:
		case !errors.Is(err, context.Canceled):
			return err
		case fallout == nil:
			fallout = err
		}
	}
	return fallout
}

// resolve turns a checked block into the settings the fetch uses.
func resolve(c *Config) settings {
	u, _ := url.Parse(c.URL) // Check parsed it
	u.User = nil             // who binds is bind_dn's business; dropped so nothing can show it
	st := settings{
		server:       u,
		shownURL:     u.Scheme + "://" + u.Host,
		startTLS:     c.StartTLS,
		caFile:       c.CAFile,
		insecure:     c.InsecureSkipVerify,
		bindDN:       c.BindDN,
		bindPassword: c.BindPassword,
		ad:           c.ActiveDirectory,
		pageSize:     uint32(c.PageSize),
		referrals:    c.Referrals,
		timeout:      c.Timeout,
	}
	us, gs := c.Users, c.Groups
	st.users = userSearch{
		base:      us.BaseDN,
		filter:    us.Filter,
		scope:     parseScope(us.Scope),
		idAttr:    us.IDAttribute,
		emailAttr: us.EmailAttribute,
		nameAttr:  us.NameAttribute,
		phoneAttr: us.PhoneAttribute,
		uidAttr:   us.UIDAttribute,
	}
	st.groups = groupSearch{
		base:       gs.BaseDN,
		filter:     gs.Filter,
		scope:      parseScope(gs.Scope),
		idAttr:     gs.IDAttribute,
		nameAttr:   gs.NameAttribute,
		memberAttr: gs.MemberAttribute,
		ownerAttr:  gs.OwnerAttribute,
		nested:     gs.Nested,
		maxDepth:   gs.MaxDepth,
		inChain:    gs.InChain,
	}
	if st.groups.inChain {
		st.groups.chainBase, _ = domainRoot(st.users.base) // Check made sure it has one
	}
	return st
}

func parseScope(s string) int {
	switch s {
	case "one":
		return goldap.ScopeSingleLevel
	case "base":
		return goldap.ScopeBaseObject
	}
	return goldap.ScopeWholeSubtree
}

// Package ldap is the LDAP / Active Directory source: it reads users and
// groups with paged searches (RFC 2696) over ldap://, StartTLS or ldaps://,
// resolves group membership in memory and returns one whole Snapshot.
package ldap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Fallbacks for keys the configuration leaves empty.
const (
	defaultPageSize = 500
	defaultTimeout  = 30 * time.Second
	defaultMaxDepth = 10
)

// Source reads one LDAP directory.
type Source struct {
	name string
	cfg  settings
	log  *zap.Logger
	// dial connects and binds. Tests replace it to hand in a wrapped or fake
	// ldap.Client; every search goes through the connection it returns.
	dial func(ctx context.Context) (goldap.Client, error)
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
	insecure     bool
	bindDN       string
	bindPassword string
	ad           bool
	pageSize     uint32
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
	nested       bool
	maxDepth     int
	inChain      bool
	chainBase    string // where in-chain searches run: the domain of users.base_dn
}

// New builds an LDAP source; it matches sources.Factory.
func New(cfg config.Source, log *zap.Logger) (sources.Source, error) {
	return newSource(cfg, log)
}

func newSource(cfg config.Source, log *zap.Logger) (*Source, error) {
	if cfg.LDAP == nil {
		return nil, fmt.Errorf("source %q: the ldap block is missing", cfg.Name)
	}
	st, err := resolve(cfg.LDAP)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", cfg.Name, err)
	}
	if st.insecure {
		log.Warn("insecure_skip_verify is set: the LDAP server certificate is not verified", zap.String("url", st.shownURL))
	}
	s := &Source{name: cfg.Name, cfg: st, log: log}
	s.dial = s.connect
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
// ending, which closes the connection at once (see connect).
func (s *Source) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return s.fetchWith(ctx, conn)
}

func resolve(c *config.LDAP) (settings, error) {
	var errs []error
	st := settings{
		startTLS:     c.StartTLS,
		caFile:       c.CAFile,
		insecure:     c.InsecureSkipVerify,
		bindDN:       c.BindDN,
		bindPassword: c.BindPassword,
		ad:           c.ActiveDirectory,
		timeout:      c.Timeout,
	}
	rawURL := strings.TrimSpace(c.URL)
	u, err := url.Parse(rawURL)
	if err == nil {
		u.User = nil // who binds is bind_dn's business; dropped so nothing can show it
		st.server, st.shownURL = u, u.Scheme+"://"+u.Host
	}
	switch {
	case rawURL == "":
		errs = append(errs, errors.New("ldap.url is required"))
	case err != nil:
		errs = append(errs, urlError(rawURL, err))
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		errs = append(errs, fmt.Errorf("ldap.url %q: the scheme must be ldap:// or ldaps://", u))
	case u.Hostname() == "":
		errs = append(errs, fmt.Errorf("ldap.url %q has no host", u))
	case u.Scheme == "ldaps" && st.startTLS:
		errs = append(errs, fmt.Errorf("ldap.start_tls cannot be used with an ldaps:// url (%s): it is already TLS", st.shownURL))
	}
	if st.bindPassword == "" && c.BindPasswordFile != "" {
		// The loader normally reads *_file secrets; this keeps a config
		// built by hand (tests, tools) working the same way.
		b, err := os.ReadFile(c.BindPasswordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("ldap.bind_password_file: %w", err))
		}
		st.bindPassword = strings.TrimRight(string(b), "\r\n")
	}
	switch {
	case c.PageSize == 0:
		st.pageSize = defaultPageSize
	case c.PageSize < 0:
		errs = append(errs, fmt.Errorf("ldap.page_size %d must be positive", c.PageSize))
	default:
		st.pageSize = uint32(c.PageSize)
	}
	if st.timeout <= 0 {
		st.timeout = defaultTimeout
	}

	us := c.Users
	st.users = userSearch{
		base:      strings.TrimSpace(us.BaseDN),
		filter:    or(us.Filter, pick(st.ad, "(&(objectCategory=person)(objectClass=user))", "(objectClass=inetOrgPerson)")),
		idAttr:    or(us.IDAttribute, pick(st.ad, "objectGUID", "entryUUID")),
		emailAttr: or(us.EmailAttribute, "mail"),
		nameAttr:  or(us.NameAttribute, "displayName"),
		phoneAttr: or(us.PhoneAttribute, "telephoneNumber"),
		uidAttr:   or(us.UIDAttribute, pick(st.ad, "sAMAccountName", "uid")),
	}
	if st.users.base == "" {
		errs = append(errs, errors.New("ldap.users.base_dn is required"))
	}
	if st.users.scope, err = parseScope(us.Scope); err != nil {
		errs = append(errs, fmt.Errorf("ldap.users.scope: %w", err))
	}

	gs := c.Groups
	member := or(gs.MemberAttribute, "member")
	st.groups = groupSearch{
		base:       or(strings.TrimSpace(gs.BaseDN), st.users.base),
		filter:     or(gs.Filter, defaultGroupFilter(st.ad, member)),
		idAttr:     or(gs.IDAttribute, pick(st.ad, "objectGUID", "entryUUID")),
		nameAttr:   or(gs.NameAttribute, "cn"),
		memberAttr: member,
		nested:     gs.Nested,
		maxDepth:   gs.MaxDepth,
		inChain:    gs.InChain,
	}
	if st.groups.maxDepth <= 0 {
		st.groups.maxDepth = defaultMaxDepth
	}
	if st.groups.scope, err = parseScope(gs.Scope); err != nil {
		errs = append(errs, fmt.Errorf("ldap.groups.scope: %w", err))
	}
	if st.groups.inChain && strings.EqualFold(member, "memberUid") {
		errs = append(errs, errors.New("ldap.groups.in_chain needs DN members; it cannot be used with member_attribute memberUid"))
	}
	if st.groups.inChain && st.users.base != "" {
		if st.groups.chainBase, err = domainRoot(st.users.base); err != nil {
			errs = append(errs, fmt.Errorf("ldap.users.base_dn: in_chain searches the domain that holds it: %w", err))
		}
	}
	for key, f := range map[string]string{"users.filter": st.users.filter, "groups.filter": st.groups.filter} {
		if _, err := goldap.CompileFilter(f); err != nil {
			errs = append(errs, fmt.Errorf("ldap.%s %q: %w", key, f, err))
		}
	}
	return st, errors.Join(errs...)
}

// urlError explains an ldap.url that does not parse. url.Parse's error
// quotes the whole url, and its reason may quote a piece of a password
// written into it: a url with an '@' is described without either.
func urlError(rawURL string, err error) error {
	if strings.Contains(rawURL, "@") {
		return errors.New("ldap.url is not a valid URL; it must not hold a user or password (set bind_dn and bind_password)")
	}
	var parseErr *url.Error
	if errors.As(err, &parseErr) {
		err = parseErr.Err
	}
	return fmt.Errorf("ldap.url %q is not a valid URL: %w", rawURL, err)
}

func defaultGroupFilter(ad bool, member string) string {
	switch {
	case ad:
		return "(objectClass=group)"
	case strings.EqualFold(member, "uniqueMember"):
		return "(objectClass=groupOfUniqueNames)"
	case strings.EqualFold(member, "memberUid"):
		return "(objectClass=posixGroup)"
	default:
		return "(objectClass=groupOfNames)"
	}
}

func parseScope(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "sub", "subtree":
		return goldap.ScopeWholeSubtree, nil
	case "one", "onelevel":
		return goldap.ScopeSingleLevel, nil
	case "base":
		return goldap.ScopeBaseObject, nil
	}
	return 0, fmt.Errorf("%q is not one of sub, one, base", s)
}

func or(v, fallback string) string {
	if strings.TrimSpace(v) == "" {
		return fallback
	}
	return strings.TrimSpace(v)
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

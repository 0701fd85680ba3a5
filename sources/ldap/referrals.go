package ldap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
)

// skipReferral counts the search continuation references left out under
// referrals: ignore, in Snapshot.Skipped.
const skipReferral = "referral"

// maxReferralHops bounds how many references deep referrals: follow goes:
// a reference found on a referred server is one hop further.
const maxReferralHops = 10

// maxShownReferences bounds how many references an error lists.
const maxShownReferences = 5

// entryFunc takes an entry of a search and the server it came from, nil
// for the configured one.
type entryFunc func(e *goldap.Entry, at *endpoint) error

// searchAll runs q (see search) and deals with the continuation
// references the server sends as ldap.referrals says: by default a
// reference fails the fetch, since the users under it would look deleted;
// follow searches the referred servers too, handing their entries to
// each; ignore warns about each reference and adds it to *ignored.
func (s *Source) searchAll(ctx context.Context, p *peers, q query, ignored *int, each entryFunc) error {
	refs, err := s.searchOn(ctx, p, q, each)
	if refs = s.withoutADSystemPartitions(q, refs); err != nil || len(refs) == 0 {
		return err
	}
	switch s.cfg.referrals {
	case referralsFollow:
		visited := map[string]bool{s.searchKey(q): true}
		return s.follow(ctx, p, q, refs, 1, visited, each)
	case referralsIgnore:
		s.ignore(q, refs, ignored)
		return nil
	}
	return s.referralError(q, refs)
}

func (s *Source) ignore(q query, refs []string, ignored *int) {
	for _, ref := range refs {
		s.log.Warn("ignoring a search continuation reference: the entries under it are left out (ldap.referrals: ignore)",
			zap.String("what", q.what), zap.String("base_dn", q.base), zap.String("reference", showReference(ref)))
	}
	*ignored += len(refs)
}

// referralError is the error for references under referrals: fail. It
// lists them (without any userinfo) and says what to do.
func (s *Source) referralError(q query, refs []string) error {
	shown := make([]string, 0, min(len(refs), maxShownReferences))
	for _, ref := range refs[:min(len(refs), maxShownReferences)] {
		shown = append(shown, fmt.Sprintf("%q", showReference(ref)))
	}
	list := strings.Join(shown, ", ")
	if more := len(refs) - len(shown); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Errorf("ldap %s (base %q): %s: the server returned %d search continuation reference(s) to entries it does not hold: %s; "+
		"they would look deleted, so the fetch stops: set ldap.referrals to follow (search them with the same bind and TLS settings) "+
		"or ignore (leave them out), or narrow the base_dn", s.server(q).shown, q.base, q.what, len(refs), list)
}

// follow runs q again where each reference points: a new connection to the
// referred server, bound and encrypted as configured, the referred base DN,
// and the scope and filter the reference gives (RFC 4511 4.5.3). The
// references those searches return are followed in turn, hops deep at
// most; visited holds the searches made, so a loop ends where it started.
func (s *Source) follow(ctx context.Context, p *peers, from query, refs []string, hops int, visited map[string]bool, each entryFunc) error {
	where := fmt.Sprintf("ldap %s (base %q): %s", s.server(from).shown, from.base, from.what)
	for _, ref := range refs {
		q, err := s.referredQuery(from, ref)
		if err != nil {
			return fmt.Errorf("%s: search continuation reference %q: %w", where, showReference(ref), err)
		}
		key := s.searchKey(q)
		if visited[key] {
			s.log.Debug("a search continuation reference leads where the fetch searched already",
				zap.String("what", q.what), zap.String("reference", showReference(ref)))
			continue
		}
		if hops > maxReferralHops {
			return fmt.Errorf("%s: search continuation reference %q is more than %d references away from the configured server; check the directory for a chain or loop of referrals",
				where, showReference(ref), maxReferralHops)
		}
		visited[key] = true
		s.log.Debug("following a search continuation reference", zap.String("what", q.what), zap.String("reference", showReference(ref)))
		more, err := s.searchOn(ctx, p, q, each)
		if err != nil {
			return fmt.Errorf("%s: follow search continuation reference %q: %w", where, showReference(ref), err)
		}
		more = s.withoutADSystemPartitions(q, more)
		if err := s.follow(ctx, p, q, more, hops+1, visited, each); err != nil {
			return err
		}
	}
	return nil
}

// searchOn runs q on the server it is for (q.at; nil: the configured one)
// over p's connection to it.
func (s *Source) searchOn(ctx context.Context, p *peers, q query, each entryFunc) ([]string, error) {
	conn, err := p.conn(ctx, q.at)
	if err != nil {
		return nil, err
	}
	return s.search(ctx, conn, q, func(e *goldap.Entry) error { return each(e, q.at) })
}

// peers are the connections of one search goroutine: its own to the
// configured server, and one per referred server, opened at the first
// reference there and kept for the references and ranged reads that lead
// there again, so a server is dialled and bound once, not per reference.
type peers struct {
	s        *Source
	home     goldap.Client
	referred map[string]goldap.Client
}

func (s *Source) newPeers(home goldap.Client) *peers {
	return &peers{s: s, home: home, referred: map[string]goldap.Client{}}
}

// conn is the connection to at: home for nil or the configured server
// (a reference without a host), else the referred server's.
func (p *peers) conn(ctx context.Context, at *endpoint) (goldap.Client, error) {
	if at == nil || peerKey(*at) == peerKey(p.s.home()) {
		return p.home, nil
	}
	key := peerKey(*at)
	if c, ok := p.referred[key]; ok {
		return c, nil
	}
	c, err := p.s.dialTo(ctx, *at)
	if err != nil {
		return nil, err
	}
	p.referred[key] = c
	return c, nil
}

// close closes the referred servers' connections; home is the caller's.
func (p *peers) close() {
	for _, c := range p.referred {
		_ = c.Close()
	}
}

// peerKey tells servers apart: scheme, host and port, and StartTLS.
func peerKey(ep endpoint) string {
	return ep.url.Scheme + "://" + strings.ToLower(ep.hostPort()) + "?starttls=" + strconv.FormatBool(ep.startTLS)
}

// referredQuery is from as ref continues it: ref is an LDAP URL
// (RFC 4516), ldap[s]://host[:port]/dn?attributes?scope?filter?extensions.
// Its DN, scope and filter replace from's when present; the attributes
// stay from's (RFC 4511 4.5.3). A reference without a host points to the
// server that sent it. An ldap:// server is reached with StartTLS when the
// configured connection is encrypted, so following never sends the bind
// password in clear where the configuration would not.
func (s *Source) referredQuery(from query, ref string) (query, error) {
	u, err := parseReference(ref)
	if err != nil {
		return query{}, err
	}
	q := from
	if u.host == "" {
		here := s.server(from)
		q.at = &here
	} else {
		hp, err := url.Parse(u.scheme + "://" + u.host)
		if err != nil || hp.Hostname() == "" || hp.Path != "" || hp.RawQuery != "" || hp.Fragment != "" {
			return query{}, fmt.Errorf("host %q is not a host[:port]", u.host)
		}
		home := s.home()
		encrypted := home.url.Scheme == "ldaps" || home.startTLS
		q.at = &endpoint{
			url:      &url.URL{Scheme: u.scheme, Host: hp.Host},
			shown:    u.scheme + "://" + hp.Host,
			startTLS: u.scheme == "ldap" && encrypted,
		}
	}
	if u.dn != "" {
		q.base = u.dn
	}
	switch scope := u.scope; strings.ToLower(scope) {
	case "":
		// A one-level search continues at the referred entry itself
		// (RFC 4511 4.5.3); a subtree search continues as one.
		if from.scope == goldap.ScopeSingleLevel {
			q.scope = goldap.ScopeBaseObject
		}
	case "base":
		q.scope = goldap.ScopeBaseObject
	case "one":
		q.scope = goldap.ScopeSingleLevel
	case "sub":
		q.scope = goldap.ScopeWholeSubtree
	default:
		return query{}, fmt.Errorf("unknown scope %q", scope)
	}
	if u.filter != "" {
		if _, err := goldap.CompileFilter(u.filter); err != nil {
			return query{}, fmt.Errorf("the filter %q does not compile: %s", u.filter, ldapReason(err))
		}
		q.filter = u.filter
	}
	for _, ext := range strings.Split(u.extensions, ",") {
		if strings.HasPrefix(ext, "!") {
			return query{}, fmt.Errorf("critical extension %q is not supported", ext)
		}
	}
	return q, nil
}

// ldapURL is a parsed LDAP URL (RFC 4516), the parts a reference uses.
type ldapURL struct {
	scheme string // ldap or ldaps
	host   string // host[:port], without userinfo; "" for none
	dn     string // "" when the URL has none
	parsed *goldap.DN
	scope  string
	filter string
	// extensions are the comma-separated extensions, "!" marking a critical one.
	extensions string
}

// parseReference parses ref, ldap[s]://host[:port]/dn?attributes?scope?filter?extensions,
// where every part after the host may be missing.
func parseReference(ref string) (ldapURL, error) {
	scheme, rest, ok := strings.Cut(ref, "://")
	u := ldapURL{scheme: strings.ToLower(scheme)}
	if !ok || (u.scheme != "ldap" && u.scheme != "ldaps") {
		return ldapURL{}, errors.New("not an ldap:// or ldaps:// URL")
	}
	path := ""
	u.host = rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		u.host, path = rest[:i], strings.TrimPrefix(rest[i:], "/")
	}
	if at := strings.LastIndexByte(u.host, '@'); at >= 0 {
		u.host = u.host[at+1:]
	}
	parts := strings.Split(path, "?")
	if len(parts) > 5 {
		return ldapURL{}, errors.New("more than the five parts dn?attributes?scope?filter?extensions")
	}
	parts = append(parts, make([]string, 5-len(parts))...)
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil {
			return ldapURL{}, fmt.Errorf("bad percent-encoding: %w", err)
		}
		parts[i] = v
	}
	if parts[0] != "" {
		dn, err := goldap.ParseDN(parts[0])
		if err != nil {
			return ldapURL{}, fmt.Errorf("the DN %q does not parse: %s", parts[0], ldapReason(err))
		}
		u.dn, u.parsed = parts[0], dn
	}
	u.scope, u.filter, u.extensions = parts[2], parts[3], parts[4]
	return u, nil
}

// withoutADSystemPartitions drops, on Active Directory, the references to
// the configuration partition and the DNS application partitions: every
// search from a domain's root gets them, and they cannot hold users or
// groups (AD keeps security principals in domain partitions only).
func (s *Source) withoutADSystemPartitions(q query, refs []string) []string {
	if !s.cfg.ad || len(refs) == 0 {
		return refs
	}
	kept := refs[:0:0]
	for _, ref := range refs {
		if u, err := parseReference(ref); err == nil && adSystemPartition(u.parsed) {
			s.log.Debug("passing over a reference to an AD partition that holds no users or groups",
				zap.String("what", q.what), zap.String("reference", showReference(ref)))
			continue
		}
		kept = append(kept, ref)
	}
	return kept
}

// adSystemPartition reports whether dn names an AD configuration, schema
// or DNS application partition: CN=Configuration, CN=Schema,CN=Configuration,
// DC=DomainDnsZones or DC=ForestDnsZones above a domain's DC= components.
func adSystemPartition(dn *goldap.DN) bool {
	if dn == nil {
		return false
	}
	names := make([]string, len(dn.RDNs))
	for i, rdn := range dn.RDNs {
		if len(rdn.Attributes) != 1 {
			return false
		}
		a := rdn.Attributes[0]
		names[i] = strings.ToLower(a.Type) + "=" + strings.ToLower(a.Value)
	}
	var domain []string
	switch {
	case len(names) > 2 && names[0] == "cn=schema" && names[1] == "cn=configuration":
		domain = names[2:]
	case len(names) > 1 && (names[0] == "cn=configuration" || names[0] == "dc=domaindnszones" || names[0] == "dc=forestdnszones"):
		domain = names[1:]
	default:
		return false
	}
	for _, n := range domain {
		if !strings.HasPrefix(n, "dc=") {
			return false
		}
	}
	return true
}

// searchKey identifies a search for follow's loop check: the server with
// its port, the normalised base DN, the scope and the filter.
func (s *Source) searchKey(q query) string {
	at := s.server(q)
	base, err := normDN(q.base)
	if err != nil {
		base = strings.ToLower(q.base)
	}
	return at.url.Scheme + "://" + strings.ToLower(at.hostPort()) + "/" + base + "?" + scopeName(q.scope) + "?" + q.filter
}

// showReference is a reference as errors and logs show it: without any
// userinfo, which an LDAP URL should not carry.
func showReference(ref string) string {
	scheme, rest, ok := strings.Cut(ref, "://")
	if !ok {
		return ref
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}

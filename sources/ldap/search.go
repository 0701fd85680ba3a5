package ldap

import (
	"context"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
)

// query is one search; what names it in errors ("search users").
type query struct {
	what   string
	base   string
	scope  int
	filter string
	attrs  []string
}

// search runs q as a paged search (RFC 2696), one page per request, and
// hands each entry to each. ctx is checked between pages: a cancelled
// fetch stops at the next page, tells the server to drop its cursor and
// returns ctx's error. Search continuation references are ignored.
//
// The next page is requested as soon as a page arrives, so the server
// prepares it while this one is handed to each; conn is only ever used by
// one goroutine at a time.
func (s *Source) search(ctx context.Context, conn goldap.Client, q query, each func(*goldap.Entry) error) error {
	if ce := s.log.Check(zap.DebugLevel, "ldap search"); ce != nil {
		ce.Write(zap.String("what", q.what), zap.String("ldapsearch", s.ldapsearchCommand(q)))
	}
	if err := ctx.Err(); err != nil {
		return s.opError(q.what, q.base, err)
	}
	paging := goldap.NewControlPaging(s.cfg.pageSize)
	req := goldap.NewSearchRequest(q.base, q.scope, goldap.NeverDerefAliases, 0, 0, false,
		q.filter, q.attrs, []goldap.Control{paging})
	referrals := 0
	page, err := conn.Search(req)
	for {
		if err != nil {
			return s.opError(q.what, q.base, err)
		}
		referrals += len(page.Referrals)
		var next chan pageResult
		if cookie := pagingCookie(page); cookie != nil {
			paging.SetCookie(cookie)
			if err := ctx.Err(); err != nil {
				s.releaseCursor(conn, req, paging)
				return s.opError(q.what, q.base, err)
			}
			next = make(chan pageResult, 1)
			go func() {
				res, err := conn.Search(req)
				next <- pageResult{res, err}
			}()
		}
		for _, e := range page.Entries {
			if err := each(e); err != nil {
				if next != nil {
					if r := <-next; r.err == nil {
						paging.SetCookie(pagingCookie(r.page))
						s.releaseCursor(conn, req, paging)
					}
				}
				return err
			}
		}
		if next == nil {
			break
		}
		r := <-next
		page, err = r.page, r.err
	}
	if referrals > 0 {
		s.log.Debug("ignored search continuation references", zap.String("what", q.what), zap.Int("count", referrals))
	}
	return nil
}

type pageResult struct {
	page *goldap.SearchResult
	err  error
}

// pagingCookie returns the cookie of a page's paging control, or nil when
// the search is complete.
func pagingCookie(page *goldap.SearchResult) []byte {
	if c, ok := goldap.FindControl(page.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging); ok && len(c.Cookie) > 0 {
		return c.Cookie
	}
	return nil
}

// releaseCursor ends a paged search early: a page size of zero with the
// last cookie tells the server to free the cursor (RFC 2696 section 3).
func (s *Source) releaseCursor(conn goldap.Client, req *goldap.SearchRequest, paging *goldap.ControlPaging) {
	if len(paging.Cookie) == 0 {
		return
	}
	paging.PagingSize = 0
	if _, err := conn.Search(req); err != nil {
		s.log.Debug("could not release the paged search cursor", zap.Error(err))
	}
}

// ldapsearchCommand renders q as the ldapsearch command line that runs the
// same search, with the password elided.
func (s *Source) ldapsearchCommand(q query) string {
	var b strings.Builder
	if s.cfg.caFile != "" {
		fmt.Fprintf(&b, "LDAPTLS_CACERT=%s ", shellQuote(s.cfg.caFile))
	}
	if s.cfg.insecure {
		b.WriteString("LDAPTLS_REQCERT=never ")
	}
	fmt.Fprintf(&b, "ldapsearch -LLL -H %s", shellQuote(s.cfg.url))
	if s.cfg.startTLS {
		b.WriteString(" -ZZ")
	}
	b.WriteString(" -x")
	if s.cfg.bindDN != "" {
		fmt.Fprintf(&b, " -D %s -w '***'", shellQuote(s.cfg.bindDN))
	}
	fmt.Fprintf(&b, " -b %s -s %s -E pr=%d/noprompt %s", shellQuote(q.base), scopeName(q.scope), s.cfg.pageSize, shellQuote(q.filter))
	for _, a := range q.attrs {
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

func scopeName(scope int) string {
	switch scope {
	case goldap.ScopeBaseObject:
		return "base"
	case goldap.ScopeSingleLevel:
		return "one"
	}
	return "sub"
}

// shellQuote quotes v for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,=:/@+%", r))
	}) < 0 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

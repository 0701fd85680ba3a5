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
	// at is the server the search runs on when a continuation reference
	// named it; nil is the configured server.
	at *endpoint
}

// server is where q runs.
func (s *Source) server(q query) endpoint {
	if q.at != nil {
		return *q.at
	}
	return s.home()
}

// search runs q as a paged search (RFC 2696), one page per request, hands
// each entry to each and returns the search continuation references the
// server sent (searchAll deals with them). When ctx ends, search returns
// ctx's error: it asks for no further page, and a page still awaited is
// broken off by the connection closing (see connect).
//
// A reader goroutine asks for the next page as soon as one arrives, so the
// server never waits while entries are handed to each. Only that goroutine
// uses conn until search returns.
func (s *Source) search(ctx context.Context, conn goldap.Client, q query, each func(*goldap.Entry) error) ([]string, error) {
	shown := s.server(q).shown
	if ce := s.log.Check(zap.DebugLevel, "ldap search"); ce != nil {
		ce.Write(zap.String("what", q.what), zap.String("ldapsearch", s.ldapsearchCommand(q)))
	}
	if err := ctx.Err(); err != nil {
		return nil, opError(shown, q.what, q.base, err)
	}
	pages := make(chan pageResult, 2)
	stop := make(chan struct{})
	go s.readPages(ctx, conn, q, pages, stop)

	var refs []string
	for r := range pages {
		if r.err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				// The read failed because ctx closed the connection.
				return nil, opError(shown, q.what, q.base, ctxErr)
			}
			return nil, opError(shown, q.what, q.base, r.err)
		}
		refs = append(refs, r.page.Referrals...)
		for _, e := range r.page.Entries {
			if err := each(e); err != nil {
				close(stop)
				for range pages { // wait until the reader is done with conn
				}
				return nil, err
			}
		}
	}
	return refs, nil
}

type pageResult struct {
	page *goldap.SearchResult
	err  error
}

// readPages sends q's pages to pages, then closes it. It ends early when
// ctx is done, sending ctx's error (the connection is closing, which frees
// the server's cursor), or when stop is closed, after releasing the cursor.
func (s *Source) readPages(ctx context.Context, conn goldap.Client, q query, pages chan<- pageResult, stop <-chan struct{}) {
	defer close(pages)
	paging := goldap.NewControlPaging(s.cfg.pageSize)
	req := goldap.NewSearchRequest(q.base, q.scope, goldap.NeverDerefAliases, 0, 0, false,
		q.filter, q.attrs, []goldap.Control{paging})
	for {
		page, err := conn.Search(req)
		if err != nil {
			pages <- pageResult{err: err}
			return
		}
		cookie := pagingCookie(page)
		paging.SetCookie(cookie)
		select {
		case pages <- pageResult{page: page}:
		case <-stop:
			s.releaseCursor(conn, req, paging)
			return
		}
		if cookie == nil {
			return
		}
		if err := ctx.Err(); err != nil {
			pages <- pageResult{err: err}
			return
		}
		select {
		case <-stop:
			s.releaseCursor(conn, req, paging)
			return
		default:
		}
	}
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
	at := s.server(q)
	fmt.Fprintf(&b, "ldapsearch -LLL -H %s", shellQuote(at.shown))
	if at.startTLS {
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

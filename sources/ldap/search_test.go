package ldap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
)

// pagedServer serves pages of entries named e0, e1, ... with a search
// continuation reference on every page, and records the page size and
// cookie of each request. Only Search is implemented.
type pagedServer struct {
	goldap.Client
	entries, perPage int
	requests         []string // "size/cookie"
}

func (p *pagedServer) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	paging, ok := goldap.FindControl(req.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
	if !ok {
		return nil, errors.New("no paging control")
	}
	p.requests = append(p.requests, fmt.Sprintf("%d/%s", paging.PagingSize, paging.Cookie))
	start := 0
	if len(paging.Cookie) > 0 {
		fmt.Sscan(string(paging.Cookie), &start)
	}
	res := &goldap.SearchResult{Referrals: []string{"ldap://elsewhere.invalid/dc=x"}}
	if paging.PagingSize == 0 {
		return res, nil // the cursor is released
	}
	end := min(start+p.perPage, p.entries)
	for i := start; i < end; i++ {
		res.Entries = append(res.Entries, goldap.NewEntry(fmt.Sprintf("cn=e%d", i), nil))
	}
	next := goldap.NewControlPaging(0)
	if end < p.entries {
		next.SetCookie([]byte(fmt.Sprint(end)))
	}
	res.Controls = []goldap.Control{next}
	return res, nil
}

func TestSearchPages(t *testing.T) {
	errStop := errors.New("stop here")
	tests := []struct {
		name         string
		entries      int
		stopAt       int // each fails on this entry; -1 never
		wantErr      error
		wantSeen     int
		wantRequests []string
	}{
		{
			name: "every page read, references returned", entries: 7, stopAt: -1, wantSeen: 7,
			wantRequests: []string{"3/", "3/3", "3/6"},
		},
		{
			// The reader may be up to three pages ahead, far from the end of
			// 34 pages; what matters is that its last request releases the
			// cursor it holds.
			name: "a failing entry ends the search and releases the cursor", entries: 100, stopAt: 1, wantErr: errStop, wantSeen: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &pagedServer{entries: tc.entries, perPage: 3}
			s := &Source{log: zap.NewNop(), cfg: settings{shownURL: "ldap://fake", pageSize: 3}}
			var seen []string
			refs, err := s.search(context.Background(), srv, query{what: "search things", base: "dc=x", filter: "(objectClass=*)"}, func(e *goldap.Entry) error {
				seen = append(seen, e.DN)
				if len(seen)-1 == tc.stopAt {
					return errStop
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("search error = %v, want %v", err, tc.wantErr)
			}
			if len(seen) != tc.wantSeen || seen[0] != "cn=e0" {
				t.Errorf("entries seen = %v, want the first %d", seen, tc.wantSeen)
			}
			if tc.wantErr == nil && len(refs) != len(srv.requests) {
				t.Errorf("search returned %d continuation references, want the %d the server sent, one a page", len(refs), len(srv.requests))
			}
			if tc.wantRequests != nil && !slices.Equal(srv.requests, tc.wantRequests) {
				t.Errorf("requests = %v, want %v", srv.requests, tc.wantRequests)
			}
			if tc.wantErr != nil {
				last := srv.requests[len(srv.requests)-1]
				if len(srv.requests) < 2 || last[:2] != "0/" || last == "0/" {
					t.Errorf("requests = %v, want the last to release a cursor (size 0 with a cookie)", srv.requests)
				}
			}
		})
	}
}

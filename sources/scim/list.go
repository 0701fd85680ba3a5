package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/httpx"
)

// Page sizes: what count asks for when the server does not say its
// largest page, and the most it ever asks for (a server may advertise
// "no limit" as 2^31).
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// maxListed bounds one list: a server whose pages never end, each unlike
// the last, ends the fetch instead of filling memory.
var maxListed = 2_000_000

// capabilities is what /ServiceProviderConfig says of the server.
type capabilities struct {
	filter   bool // filter.supported
	paging   bool // startIndex and count are honoured
	pageSize int  // count asked for each page
}

// serviceProviderConfig is the part of RFC 7643 §5 read, with the
// pagination object of the SCIM cursor-pagination draft.
type serviceProviderConfig struct {
	Filter *struct {
		Supported  *flexBool `json:"supported"`
		MaxResults int       `json:"maxResults"`
	} `json:"filter"`
	Pagination *struct {
		Index       *flexBool `json:"index"`
		MaxPageSize int       `json:"maxPageSize"`
	} `json:"pagination"`
}

// discover reads /ServiceProviderConfig. A server without one (404, 501)
// or that will not show it (403, 405) is taken to filter and page, as RFC
// 7644 has most servers do, a page of defaultPageSize.
func (s *Source) discover(ctx context.Context) (capabilities, error) {
	caps := capabilities{filter: true, paging: true, pageSize: defaultPageSize}
	req := httpx.Request{Method: http.MethodGet, Route: "/ServiceProviderConfig", Path: "/ServiceProviderConfig", Header: accept}
	resp, err := s.api.Do(ctx, req)
	var apiErr *httpx.APIError
	switch {
	case errors.As(err, &apiErr) && slices.Contains([]int{http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented}, apiErr.Status):
		s.log.Debug("no /ServiceProviderConfig; taking the server to filter and page", zap.Int("status", apiErr.Status))
		return caps, nil
	case err != nil:
		return caps, s.explain(err)
	}
	var spc serviceProviderConfig
	if err := json.Unmarshal(resp.Body, &spc); err != nil {
		s.log.Warn("/ServiceProviderConfig is not readable; taking the server to filter and page", zap.Error(err))
		return caps, nil
	}
	size := 0
	if f := spc.Filter; f != nil {
		if f.Supported != nil {
			caps.filter = bool(*f.Supported)
		}
		size = positiveMin(size, f.MaxResults)
	}
	if p := spc.Pagination; p != nil {
		if p.Index != nil {
			caps.paging = bool(*p.Index)
		}
		size = positiveMin(size, p.MaxPageSize)
	}
	if size > 0 {
		caps.pageSize = min(size, maxPageSize)
	}
	s.log.Debug("service provider capabilities", zap.Bool("filter", caps.filter), zap.Bool("paging", caps.paging), zap.Int("page_size", caps.pageSize))
	return caps, nil
}

// positiveMin is the smaller of the positive ones of a and b, 0 if none.
func positiveMin(a, b int) int {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}

// groupQuery is the /Groups query: group_filter when the server filters,
// and the attributes read (with those group_filter reads when it is
// applied here).
func (s *Source) groupQuery(caps capabilities) url.Values {
	q := url.Values{"attributes": {groupAttributes}}
	if s.cfg.GroupFilter != "" && caps.filter {
		q.Set("filter", s.cfg.GroupFilter)
	}
	return q
}

// listResponse is an RFC 7644 §3.4.2 ListResponse of T.
type listResponse[T any] struct {
	TotalResults *int `json:"totalResults"`
	Resources    []T  `json:"Resources"`
}

// resource is a SCIM resource as decoded.
type resource interface{ id() string }

// listResult is how a list ended.
type listResult struct {
	// complete is false when the server cannot page and returned fewer
	// resources than totalResults.
	complete   bool
	total, got int
}

// list reads every resource of the list at path and hands each to fn.
// When the server pages, pages go by startIndex (1-based) and count until
// totalResults is reached or a page comes back empty; a page that repeats
// the previous one, an empty page before totalResults, or more than
// maxListed resources fail the read. Without paging it is one request.
func list[T any, PT interface {
	*T
	resource
}](ctx context.Context, s *Source, caps capabilities, path string, query url.Values, fn func(PT) error) (listResult, error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	first := httpx.Request{Method: http.MethodGet, Route: path, Path: path, Query: q, Header: accept}
	if caps.paging {
		q.Set("startIndex", "1")
		q.Set("count", strconv.Itoa(caps.pageSize))
	}
	var (
		res        listResult
		start      = 1
		prev, ids  []string
		pageNumber int
	)
	err := httpx.Pages(ctx, s.api, first, func(p *listResponse[T], _ *httpx.Response) (string, error) {
		pageNumber++
		total := -1
		if p.TotalResults != nil {
			total = *p.TotalResults
			res.total = total
		}
		ids = ids[:0]
		for i := range p.Resources {
			item := PT(&p.Resources[i])
			if item.id() == "" {
				return "", fmt.Errorf("scim: GET %s: page %d holds a resource without an id", path, pageNumber)
			}
			ids = append(ids, item.id())
			if err := fn(item); err != nil {
				return "", err
			}
		}
		res.got += len(p.Resources)
		if !caps.paging {
			res.complete = total < 0 || res.got >= total
			return "", nil
		}
		switch {
		case len(ids) == 0 && total >= 0 && res.got < total:
			return "", fmt.Errorf("scim: GET %s: the server reported %d results but returned %d before an empty page; "+
				"the list may have changed while it was read (the next run reads it again)", path, total, res.got)
		case len(ids) == 0:
			res.complete = true
			return "", nil
		case slices.Equal(ids, prev):
			return "", fmt.Errorf("scim: GET %s: the page at startIndex %d repeats the previous one: the server does not page by startIndex (RFC 7644 §3.4.2.4)", path, start)
		case total >= 0 && res.got >= total:
			res.complete = true
			return "", nil // stop at totalResults, whatever more the server would give
		case res.got >= maxListed:
			return "", fmt.Errorf("scim: GET %s: more than %d resources and no end in sight; refusing to read on", path, maxListed)
		}
		prev = append(prev[:0], ids...)
		start += len(ids)
		q.Set("startIndex", strconv.Itoa(start))
		next := s.base.JoinPath(path)
		next.RawQuery = q.Encode()
		return next.String(), nil
	})
	if err != nil {
		return res, s.explain(err)
	}
	return res, nil
}

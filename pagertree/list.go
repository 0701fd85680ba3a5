package pagertree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/ptsync/ptsync/internal/httpx"
)

// pageSize is the largest limit the API takes; every list asks for it.
const pageSize = 100

// maxPresized bounds the room reserved up front for a list's ids.
// total_count is the server's word: a hostile one must not make the client
// reserve room for a billion ids. Past it, the set grows as ids arrive.
const maxPresized = 1 << 16

// minSlack is the least slack a reading has (see slack).
const minSlack = 10 * pageSize

// slack is how far past its first page's total_count a reading of a
// collection may run: objects may be created while it is read (ptsync's
// own creates go on while a lost create is looked up), as many again as
// there were and at least minSlack. It also bounds a reading, so a server
// whose pages never end is not followed for ever: a reading requests at
// most ceil((total_count+slack)/100) pages.
func slack(total int) int { return max(minSlack, total) }

// maxPages is ceil((total+slack(total))/100), without overflowing.
func maxPages(total int) int {
	if total > math.MaxInt-slack(total) {
		return pagesFor(math.MaxInt)
	}
	return pagesFor(total + slack(total))
}

// reading is what one pass over a collection read.
type reading struct {
	read    int  // distinct objects
	total   int  // the first page's total_count
	overrun bool // stopped at maxPages while the last page said has_more
	stopped bool // the consumer stopped it
	seen    map[string]struct{}
}

// whole reports whether the reading holds exactly the objects its first
// page counted.
func (r reading) whole() bool { return !r.overrun && r.read == r.total }

// grew reports whether the reading came out long, within the slack: the
// collection grew while it was read.
func (r reading) grew() bool {
	return !r.overrun && r.read > r.total && r.read-r.total <= slack(r.total)
}

func (r reading) String() string {
	if r.overrun {
		return fmt.Sprintf("more than %d of total_count %d", r.read, r.total)
	}
	return fmt.Sprintf("%d of total_count %d", r.read, r.total)
}

// incomplete is the error of a collection read twice, to no avail.
func incomplete(route string, first, second reading) error {
	counts := first.String() + " twice"
	if first.read != second.read || first.total != second.total || first.overrun != second.overrun {
		counts = first.String() + ", then " + second.String()
	}
	return fmt.Errorf("pagertree: listing %s: read %s; PagerTree's listing is incomplete, so it is not used (try again later)", route, counts)
}

// listAll returns every object of a collection route ("/user",
// "/api/v4/teams").
//
// A listing is taken when a reading yields exactly as many distinct
// objects as its first page's total_count. Objects created or deleted
// while it is read make a reading come out long or short (and an object
// deleted meanwhile can make a later one slip to an earlier page unseen),
// so a reading that does not match is replaced by a second one. That one
// is taken if it matches or came out long within the slack (the account
// keeps growing, and a third reading would not settle it either); short,
// or long beyond the slack, the listing fails naming both counts rather
// than pass on part of the account. A page that repeats the previous
// page's ids fails it at once: the server ignores the offset.
func listAll[T any](ctx context.Context, c *Client, route string, id func(T) string) ([]T, error) {
	var all []T
	keep := func(v T) bool {
		all = append(all, v)
		return true
	}
	first, err := readOnce(ctx, c, route, id, keep)
	if err != nil {
		return nil, err
	}
	if first.whole() {
		return all, nil
	}
	all, first.seen = nil, nil // the second reading replaces the first
	second, err := readOnce(ctx, c, route, id, keep)
	if err != nil {
		return nil, err
	}
	if !second.whole() && !second.grew() {
		return nil, incomplete(route, first, second)
	}
	return all, nil
}

// list yields the objects of a collection route, for a lookup that may
// stop at the one it wants. A reading that matches its total_count or
// came out long within the slack is taken at once: a lookup runs while
// the run's other creates go on. Otherwise a second reading yields the
// objects the first did not, and when it is short or long beyond the
// slack too, the sequence ends with the error listAll would return, so a
// lookup never takes an incomplete listing for "not there".
//
// On error the sequence yields it once (with a zero object) and ends.
func list[T any](ctx context.Context, c *Client, route string, id func(T) string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		fail := func(err error) {
			var zero T
			yield(zero, err)
		}
		first, err := readOnce(ctx, c, route, id, func(v T) bool { return yield(v, nil) })
		switch {
		case err != nil:
			fail(err)
			return
		case first.stopped || first.whole() || first.grew():
			return
		}
		second, err := readOnce(ctx, c, route, id, func(v T) bool {
			if _, yielded := first.seen[id(v)]; yielded {
				return true
			}
			return yield(v, nil)
		})
		switch {
		case err != nil:
			fail(err)
		case !second.stopped && !second.whole() && !second.grew():
			fail(incomplete(route, first, second))
		}
	}
}

// readOnce reads a collection once, passing each distinct object to each
// in order until each returns false.
//
// The first page's total_count says how many pages there are; the rest are
// fetched concurrently (at most Concurrency at a time and a bounded number
// of pages ahead of the consumer) and passed on in order, so a stable
// collection of N objects costs max(1, ceil(N/100)) requests. An object
// seen on two pages counts once. When the last page planned still says
// has_more, the collection grew and the pages after it are fetched one by
// one, up to maxPages.
func readOnce[T any](ctx context.Context, c *Client, route string, id func(T) string, each func(T) bool) (reading, error) {
	var r reading
	// Refused here, the mix-up is not reported as a failure at offset 0.
	if err := c.speaks(httpx.Request{Method: http.MethodGet, Route: route}); err != nil {
		return r, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// emit passes on the page's objects not seen before and counts them.
	emit := func(page List[T]) (fresh int) {
		for _, v := range page.Data {
			key := id(v)
			if _, dup := r.seen[key]; dup {
				continue
			}
			r.seen[key] = struct{}{}
			r.read++
			fresh++
			if !each(v) {
				r.stopped = true
				return fresh
			}
		}
		return fresh
	}
	// next takes page number n (2 or later), already fetched, after prev.
	next := func(n int, prev, page List[T]) error {
		if emit(page) == 0 && samePage(prev, page, id) {
			return fmt.Errorf("pagertree: listing %s: the page at offset %d repeats the previous page's %d ids; PagerTree ignores the offset, so the listing is not used",
				route, (n-1)*pageSize, len(page.Data))
		}
		return nil
	}

	last, err := fetchPage(ctx, c, route, 1, id)
	if err != nil {
		return r, err
	}
	r.total = last.TotalCount
	// Sized once for the whole list, within reason: total_count is
	// the server's word, not a promise.
	r.seen = make(map[string]struct{}, min(r.total, maxPresized))
	if emit(last); r.stopped {
		return r, nil
	}
	bound := maxPages(r.total)
	fetched := 1
	if planned := pagesFor(r.total); planned > 1 && last.HasMore {
		queue, wait := prefetch(ctx, c, route, 2, planned, id)
		defer func() {
			cancel() // unblocks the prefetcher before waiting for it
			wait()
		}()
		for future := range queue {
			res := <-future
			if res.err != nil {
				return r, res.err
			}
			if err := next(fetched+1, last, res.page); err != nil || r.stopped {
				return r, err
			}
			last = res.page
			fetched++
			if !last.HasMore || len(last.Data) == 0 {
				break // the collection shrank: the pages left are empty
			}
		}
	}
	// An empty page that says has_more would make this loop forever.
	for last.HasMore && len(last.Data) > 0 {
		if fetched >= bound {
			r.overrun = true
			return r, nil
		}
		page, err := fetchPage(ctx, c, route, fetched+1, id)
		if err != nil {
			return r, err
		}
		if err := next(fetched+1, last, page); err != nil || r.stopped {
			return r, err
		}
		last = page
		fetched++
	}
	return r, nil
}

// samePage reports whether page holds the same ids as prev, in any order:
// a server that ignores the offset answers every page alike.
func samePage[T any](prev, page List[T], id func(T) string) bool {
	if len(page.Data) == 0 {
		return false
	}
	set := func(l List[T]) map[string]struct{} {
		ids := make(map[string]struct{}, len(l.Data))
		for _, v := range l.Data {
			ids[id(v)] = struct{}{}
		}
		return ids
	}
	was, is := set(prev), set(page)
	if len(was) != len(is) {
		return false
	}
	for key := range is {
		if _, ok := was[key]; !ok {
			return false
		}
	}
	return true
}

// pagesFor is ceil(total/pageSize), written so that no total overflows.
func pagesFor(total int) int {
	pages := total / pageSize
	if total%pageSize != 0 {
		pages++
	}
	return pages
}

// prefetchWindow is how many pages per unit of concurrency may be fetched
// ahead of the consumer. With only Concurrency pages ahead, one slow page
// would fill the window and stall every other fetch until it arrived; a
// few times that keeps the other slots busy at a bounded memory cost.
const prefetchWindow = 4

// pageResult is a fetched page or why it could not be fetched.
type pageResult[T any] struct {
	page List[T]
	err  error
}

// prefetch fetches pages first..last with at most Concurrency requests in
// flight. The queue gives one future per page, in page order, and holds at
// most prefetchWindow·Concurrency of them, so a slow consumer stops the
// fetching instead of piling up pages in memory. Cancel ctx before calling wait to stop it
// early.
func prefetch[T any](ctx context.Context, c *Client, route string, first, last int, id func(T) string) (queue <-chan chan pageResult[T], wait func()) {
	futures := make(chan chan pageResult[T], prefetchWindow*c.http.Concurrency())
	inFlight := make(chan struct{}, c.http.Concurrency())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(futures)
		for p := first; p <= last; p++ {
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			future := make(chan pageResult[T], 1)
			select {
			case futures <- future:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				page, err := fetchPage(ctx, c, route, p, id)
				<-inFlight
				future <- pageResult[T]{page: page, err: err}
			}()
		}
	}()
	return futures, wg.Wait
}

// fetchPage gets one page (1-based) of a list.
func fetchPage[T any](ctx context.Context, c *Client, route string, page int, id func(T) string) (List[T], error) {
	offset := (page - 1) * pageSize
	query := url.Values{"limit": {strconv.Itoa(pageSize)}, "offset": {strconv.Itoa(offset)}}
	resp, err := c.do(ctx, httpx.Request{Method: http.MethodGet, Route: route, Path: route, Query: query})
	if err != nil {
		return List[T]{}, fmt.Errorf("%w (listing from offset %d)", err, offset)
	}
	list, err := decodeList(resp.Body, id)
	if err != nil {
		return List[T]{}, fmt.Errorf("pagertree: GET %s: decoding the answer: %w (listing from offset %d)", route, err, offset)
	}
	return list, nil
}

// decodeList decodes a list answer strictly enough that a body which is not
// a list (null, {}, an object without total_count) is an error rather than
// an empty account, and every object has the id listing deduplicates by.
func decodeList[T any](body []byte, id func(T) string) (List[T], error) {
	var raw struct {
		Data       *[]T `json:"data"`
		HasMore    bool `json:"has_more"`
		TotalCount *int `json:"total_count"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return List[T]{}, err
	}
	switch {
	case raw.Data == nil:
		return List[T]{}, errors.New("the list has no data array")
	case raw.TotalCount == nil:
		return List[T]{}, errors.New("the list has no total_count")
	case *raw.TotalCount < 0:
		return List[T]{}, fmt.Errorf("the list's total_count %d is negative", *raw.TotalCount)
	}
	for i, v := range *raw.Data {
		if id(v) == "" {
			return List[T]{}, fmt.Errorf("object %d of the list has no id", i)
		}
	}
	return List[T]{Data: *raw.Data, HasMore: raw.HasMore, TotalCount: *raw.TotalCount}, nil
}

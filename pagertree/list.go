package pagertree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/ptsync/ptsync/internal/httpx"
)

// pageSize is the largest limit the API takes; every list asks for it.
const pageSize = 100

// maxPresized bounds the room reserved up front for a list's ids.
const maxPresized = 1 << 20

// list yields every object of a collection route ("/user", "/team").
//
// The first page's total_count says how many pages there are; the rest are
// fetched concurrently (at most Concurrency at a time and a bounded number
// of pages ahead of the consumer) and yielded in order, so a stable
// collection of N objects costs max(1, ceil(N/100)) requests. Offsets shift
// when objects are created or deleted while listing: an object seen on two
// pages is yielded once, and when the last page still says has_more the
// collection grew and the pages after it are fetched one by one. An object
// deleted meanwhile can make a later one slip to an earlier page unseen;
// offset paging cannot prevent that.
//
// On error the sequence yields it once (with a zero object) and ends.
func list[T any](ctx context.Context, c *Client, route string, id func(T) string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var seen map[string]struct{}
		emit := func(page List[T]) bool {
			for _, v := range page.Data {
				key := id(v)
				if _, dup := seen[key]; dup {
					continue
				}
				seen[key] = struct{}{}
				if !yield(v, nil) {
					return false
				}
			}
			return true
		}
		fail := func(err error) {
			var zero T
			yield(zero, err)
		}

		last, err := fetchPage(ctx, c, route, 1, id)
		if err != nil {
			fail(err)
			return
		}
		// Sized once for the whole list, within reason: total_count is
		// the server's word, not a promise.
		seen = make(map[string]struct{}, min(last.TotalCount, maxPresized))
		if !emit(last) {
			return
		}
		fetched := 1
		if planned := pagesFor(last.TotalCount); planned > 1 && last.HasMore {
			queue, wait := prefetch(ctx, c, route, 2, planned, id)
			defer func() {
				cancel() // unblocks the prefetcher before waiting for it
				wait()
			}()
			for future := range queue {
				r := <-future
				if r.err != nil {
					fail(r.err)
					return
				}
				if !emit(r.page) {
					return
				}
				last = r.page
				fetched++
				if !last.HasMore || len(last.Data) == 0 {
					break // the collection shrank: the pages left are empty
				}
			}
		}
		// An empty page that says has_more would make this loop forever.
		for last.HasMore && len(last.Data) > 0 {
			if last, err = fetchPage(ctx, c, route, fetched+1, id); err != nil {
				fail(err)
				return
			}
			if !emit(last) {
				return
			}
			fetched++
		}
	}
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
	resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodGet, Route: route, Path: route, Query: query})
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

// collect drains a list into a slice, stopping at the first error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var all []T
	for v, err := range seq {
		if err != nil {
			return nil, err
		}
		all = append(all, v)
	}
	return all, nil
}

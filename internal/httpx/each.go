package httpx

import (
	"context"
	"errors"
	"net/http"

	"golang.org/x/sync/errgroup"
)

// ForEach runs fn for each of 0..n-1, at most Concurrency at once; the
// first failure cancels the others' context and is returned.
func (c *Client) ForEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.concurrency)
	for i := range n {
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}

// GetEach sends every request of reqs (GETs of one object each) through
// ForEach and decodes each answer into a T. found[i] is nil when reqs[i]
// was answered 404: the object is gone.
func GetEach[T any](ctx context.Context, c *Client, reqs []Request) (found []*T, err error) {
	found = make([]*T, len(reqs))
	err = c.ForEach(ctx, len(reqs), func(ctx context.Context, i int) error {
		v := new(T)
		_, err := c.DecodeJSON(ctx, reqs[i], v)
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
			return nil
		case err != nil:
			return err
		}
		found[i] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

package httpx

import "context"

// Pages reads a paged list: it sends first, decodes each answer into a new
// P and hands it to page, which returns the next page's URL (a next link,
// followed as given with first's method, route and headers) or "" at the
// end. A failure on any page ends the read with its error: a partial list
// would pass for a shorter one.
func Pages[P any](ctx context.Context, c *Client, first Request, page func(p *P, resp *Response) (next string, err error)) error {
	req := first
	for {
		var p P
		resp, err := c.DecodeJSON(ctx, req, &p)
		if err != nil {
			return err
		}
		next, err := page(&p, resp)
		if err != nil || next == "" {
			return err
		}
		req = Request{Method: first.Method, Route: first.Route, URL: next, Header: first.Header}
	}
}

package pagertree

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ptsync/ptsync/internal/httpx"
)

// checkKey is Login on v4, which has no login: it lists one account user,
// the cheapest authenticated request there is, and wants a list back, so
// a key the server refuses (401) or a URL that is not the API (a web page
// answering 200) fails it.
func (c *Client) checkKey(ctx context.Context) error {
	req := httpx.Request{Method: http.MethodGet, Route: accountUsers.route, Path: accountUsers.route, Query: url.Values{"limit": {"1"}}}
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if _, err := decodeList(resp.Body, accountUserID); err != nil {
		return fmt.Errorf("pagertree: %s %s: the answer is not a list (is the URL PagerTree's API?): %w", req.Method, req.Route, err)
	}
	return nil
}

// parseErrorV4 reads v4's error body, {"errors":[{"message"}],"code":422}.
// The code is the HTTP status again, so it is kept only when it differs:
// then it says something the status does not.
func parseErrorV4(status int, body []byte) (string, []string) {
	var eb ErrorBodyV4
	if json.Unmarshal(body, &eb) != nil {
		return "", nil
	}
	code := ""
	if eb.Code != 0 && eb.Code != status {
		code = strconv.Itoa(eb.Code)
	}
	return code, messages(eb.Errors)
}

package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/httpx"
)

type numbers struct {
	Items []int  `json:"items"`
	Next  string `json:"next"`
}

// TestPages follows next links as given, with the first request's route
// and headers, until a page has none; a failing page ends the read.
func TestPages(t *testing.T) {
	var srv *server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		switch page {
		case "", "2":
			next := srv.URL + "/items?page=" + map[string]string{"": "2", "2": "3"}[page]
			fmt.Fprintf(w, `{"items":[1,2],"next":%q}`, next)
		case "3":
			fmt.Fprint(w, `{"items":[3]}`)
		default:
			fail(w, http.StatusBadRequest, "no such page")
		}
	})
	c := newClient(t, srv.URL, nil)
	first := httpx.Request{Method: http.MethodGet, Route: "/items", Path: "/items", Header: http.Header{"ConsistencyLevel": {"eventual"}}}
	var got []int
	err := httpx.Pages(context.Background(), c, first, func(p *numbers, _ *httpx.Response) (string, error) {
		got = append(got, p.Items...)
		return p.Next, nil
	})
	if err != nil || fmt.Sprint(got) != "[1 2 1 2 3]" {
		t.Fatalf("Pages = %v, %v; want [1 2 1 2 3]", got, err)
	}
	reqs := srv.requests()
	if len(reqs) != 3 || reqs[2].Query != "page=3" || reqs[2].Header.Get("ConsistencyLevel") != "eventual" {
		t.Fatalf("requests %+v: want three, the last page=3 with the first's header", reqs)
	}

	stop := errors.New("stop")
	err = httpx.Pages(context.Background(), c, first, func(*numbers, *httpx.Response) (string, error) { return "", stop })
	if !errors.Is(err, stop) {
		t.Errorf("the page function's error was not returned: %v", err)
	}
	err = httpx.Pages(context.Background(), c, first, func(*numbers, *httpx.Response) (string, error) { return srv.URL + "/items?page=9", nil })
	if err == nil || !strings.Contains(err.Error(), "answered 400") {
		t.Errorf("a failing second page: %v, want its 400", err)
	}
}

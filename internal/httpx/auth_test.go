package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ptsync/ptsync/internal/httpx"
)

// tokens is a token source for TokenAuth that hands out tok-1, tok-2, ...
// expiring after ttl (never when ttl is zero); gate, when set, holds each
// fetch until it is closed or the fetch's ctx ends.
type tokens struct {
	ttl     time.Duration
	gate    chan struct{}
	started chan struct{} // receives once per fetch, when set
	fetches atomic.Int32
}

func (s *tokens) fetch(ctx context.Context) (*oauth2.Token, error) {
	n := s.fetches.Add(1)
	if s.started != nil {
		s.started <- struct{}{}
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	tok := &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n), TokenType: "Bearer"}
	if s.ttl != 0 {
		tok.Expiry = time.Now().Add(s.ttl)
	}
	return tok, nil
}

// apply runs Auth.Apply on a fresh request and returns its Authorization.
func apply(ctx context.Context, a httpx.Auth) (credential, header string, err error) {
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1/", nil)
	credential, err = a.Apply(ctx, r)
	return credential, r.Header.Get("Authorization"), err
}

func TestTokenAuthKeepsTheTokenUntilNearItsExpiry(t *testing.T) {
	t.Run("valid for an hour", func(t *testing.T) {
		src := &tokens{ttl: time.Hour}
		a := httpx.TokenAuth("Bearer", src.fetch)
		for range 5 {
			cred, header, err := apply(t.Context(), a)
			if err != nil || cred != "tok-1" || header != "Bearer tok-1" {
				t.Fatalf("Apply = %q, %q, %v; want tok-1", cred, header, err)
			}
		}
		if n := src.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches, want 1", n)
		}
	})
	t.Run("no expiry", func(t *testing.T) {
		src := &tokens{}
		a := httpx.TokenAuth("Bearer", src.fetch)
		for range 3 {
			if _, _, err := apply(t.Context(), a); err != nil {
				t.Fatal(err)
			}
		}
		if n := src.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches, want 1", n)
		}
	})
	t.Run("within oauth2's expiry margin", func(t *testing.T) {
		// A token expiring in 5 s is used once (the call that fetched it
		// needs it), then replaced: oauth2.Token.Valid wants 10 s to spare.
		src := &tokens{ttl: 5 * time.Second}
		a := httpx.TokenAuth("Bearer", src.fetch)
		for i := 1; i <= 3; i++ {
			cred, _, err := apply(t.Context(), a)
			if err != nil || cred != fmt.Sprintf("tok-%d", i) {
				t.Fatalf("Apply %d = %q, %v; want tok-%d", i, cred, err, i)
			}
		}
	})
}

func TestTokenAuthFetchesOnceForConcurrentCallers(t *testing.T) {
	src := &tokens{ttl: time.Hour, gate: make(chan struct{}), started: make(chan struct{}, 100)}
	a := httpx.TokenAuth("Bearer", src.fetch)
	const callers = 8
	var wg sync.WaitGroup
	creds := make([]string, callers)
	for i := range callers {
		wg.Go(func() {
			cred, _, err := apply(t.Context(), a)
			if err != nil {
				t.Errorf("Apply: %v", err)
			}
			creds[i] = cred
		})
	}
	<-src.started
	time.Sleep(50 * time.Millisecond) // let the other callers reach the wait; not an assertion
	close(src.gate)
	wg.Wait()
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for %d concurrent callers, want 1", n, callers)
	}
	for i, cred := range creds {
		if cred != "tok-1" {
			t.Fatalf("caller %d got %q, want tok-1", i, cred)
		}
	}
}

func TestTokenAuthWaitersHonourTheirContext(t *testing.T) {
	src := &tokens{ttl: time.Hour, gate: make(chan struct{}), started: make(chan struct{}, 100)}
	a := httpx.TokenAuth("Bearer", src.fetch)
	first := make(chan error, 1)
	go func() {
		_, _, err := apply(t.Context(), a)
		first <- err
	}()
	<-src.started

	// A waiter whose context ends gives up at once; the fetch goes on.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := apply(ctx, a); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply with an expiring context = %v; want DeadlineExceeded", err)
	}
	close(src.gate)
	if err := <-first; err != nil {
		t.Fatalf("the fetching caller: %v", err)
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestTokenAuthWaiterFetchesWhenTheFetcherGivesUp(t *testing.T) {
	src := &tokens{ttl: time.Hour, gate: make(chan struct{}), started: make(chan struct{}, 100)}
	a := httpx.TokenAuth("Bearer", src.fetch)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, _, err := apply(ctx, a)
		first <- err
	}()
	<-src.started
	second := make(chan string, 1)
	go func() {
		cred, _, err := apply(t.Context(), a)
		if err != nil {
			t.Errorf("the second caller: %v", err)
		}
		second <- cred
	}()
	time.Sleep(20 * time.Millisecond) // let the second caller wait; not an assertion
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the first caller: %v; want Canceled", err)
	}
	<-src.started // the second caller's own fetch
	close(src.gate)
	if cred := <-second; cred != "tok-2" {
		t.Fatalf("the second caller got %q, want tok-2", cred)
	}
}

func TestTokenAuthFetchErrors(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	for name, fetch := range map[string]func(context.Context) (*oauth2.Token, error){
		"an error":        func(context.Context) (*oauth2.Token, error) { return nil, errors.New("invalid_client") },
		"no token":        func(context.Context) (*oauth2.Token, error) { return nil, nil },
		"no access token": func(context.Context) (*oauth2.Token, error) { return &oauth2.Token{}, nil },
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Auth = httpx.TokenAuth("Bearer", fetch) })
			_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
			if err == nil || !strings.HasPrefix(err.Error(), "getting a token: ") {
				t.Fatalf("Do = %v; want the token error", err)
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("%d requests sent without a token", n)
	}
}

// identityProvider is an OAuth2 token endpoint (client credentials) and an
// API that accepts only the tokens it calls live.
type identityProvider struct {
	*server
	mu     sync.Mutex
	issued int
	live   map[string]bool
	same   bool // hand out tok-1 every time, live only the first time
	calls  atomic.Int32
}

func newIdentityProvider(t *testing.T) *identityProvider {
	p := &identityProvider{live: map[string]bool{}}
	p.server = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.URL.Path == "/token" {
			if id, secret, ok := r.BasicAuth(); !ok || id != "ptsync" || secret != "client-secret" || r.FormValue("grant_type") != "client_credentials" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if !p.same || p.issued == 0 {
				p.issued++
				p.live[fmt.Sprintf("tok-%d", p.issued)] = true
			}
			tok := fmt.Sprintf("tok-%d", p.issued)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
			return
		}
		p.calls.Add(1)
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || !p.live[tok] {
			fail(w, http.StatusUnauthorized, "token expired")
			return
		}
		_, _ = w.Write([]byte(`{}`))
	})
	return p
}

// expire makes every token issued so far dead, as a server that ends
// tokens before their stated expiry (a key rotation, a revocation) does.
func (p *identityProvider) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.live)
}

// tokensIssued counts the token requests.
func (p *identityProvider) tokensIssued() int { return len(p.requestsTo("/token")) }

func (p *identityProvider) requestsTo(path string) []served {
	var out []served
	for _, s := range p.requests() {
		if s.Path == path {
			out = append(out, s)
		}
	}
	return out
}

func (p *identityProvider) client(t *testing.T, obs httpx.Observer) *httpx.Client {
	cc := &clientcredentials.Config{ClientID: "ptsync", ClientSecret: "client-secret", TokenURL: p.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	return newClient(t, p.URL, func(cfg *httpx.Config) {
		cfg.Auth = httpx.TokenAuth("Bearer", cc.Token)
		cfg.Observer = obs
		cfg.Secrets = []string{cc.ClientSecret}
	})
}

func TestTokenAuthRenewsARefusedTokenOnce(t *testing.T) {
	t.Run("then succeeds", func(t *testing.T) {
		p := newIdentityProvider(t)
		obs := &events{}
		c := p.client(t, obs)
		get := httpx.Request{Method: "GET", Route: "/users", Path: "/users"}
		for range 2 {
			if _, err := c.Do(t.Context(), get); err != nil {
				t.Fatalf("Do: %v", err)
			}
		}
		p.expire()
		// Concurrent callers meeting the 401 share one renewal.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := c.Do(t.Context(), get); err != nil {
					t.Errorf("Do after the token expired: %v", err)
				}
			})
		}
		wg.Wait()
		if n := p.tokensIssued(); n != 2 {
			t.Fatalf("%d tokens fetched, want 2 (one at first, one after the 401s)", n)
		}
		for _, s := range p.requestsTo("/users")[2:] {
			if s.Authorization != "Bearer tok-1" && s.Authorization != "Bearer tok-2" {
				t.Fatalf("sent Authorization %q", s.Authorization)
			}
		}
		if retries := slices.DeleteFunc(obs.all(), func(e string) bool { return e != "retry 401" }); len(retries) == 0 || len(retries) > 8 {
			t.Fatalf("%d retries; want one 401 retry per caller that met the expired token", len(retries))
		}
	})
	t.Run("a fresh token refused too ends the call", func(t *testing.T) {
		p := newIdentityProvider(t)
		p.same = true // the token endpoint hands back the token it gave before
		c := p.client(t, nil)
		if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/users", Path: "/users"}); err != nil {
			t.Fatalf("Do: %v", err)
		}
		p.expire()
		_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/users", Path: "/users"})
		var apiErr *httpx.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
			t.Fatalf("Do = %v; want the 401", err)
		}
		// tok-1, then one forced fetch after the 401, which brings back
		// the same dead token: its second 401 ends the call.
		if n, calls := p.tokensIssued(), len(p.requestsTo("/users")); n != 2 || calls != 3 {
			t.Fatalf("%d token fetches and %d calls, want 2 and 3", n, calls)
		}
	})
}

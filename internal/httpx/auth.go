package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
)

// Auth puts credentials on a request and renews them after a 401.
type Auth interface {
	// Apply sets r's credentials and returns the credential it used (a
	// token), which Renew gets back and which errors never show.
	Apply(ctx context.Context, r *http.Request) (credential string, err error)
	// Renew is called after a 401 answered a request sent with credential
	// used. It gets a fresh credential unless the current one already
	// differs from used (another caller renewed it: no storm of renewals).
	// An error ends the call; so does ErrCannotRenew, in which case Do
	// returns the 401 *APIError itself.
	Renew(ctx context.Context, used string) error
}

// ErrCannotRenew is what Auth.Renew returns when there is no fresher
// credential to be had: Do then returns the 401's *APIError.
var ErrCannotRenew = errors.New("httpx: credentials cannot be renewed")

// HeaderAuth is a fixed credential: "Authorization: <scheme> <value>", or
// the raw value when scheme is "" (as PagerTree v3 wants). Renew returns
// ErrCannotRenew.
func HeaderAuth(scheme, value string) Auth {
	return headerAuth{header: authorization(scheme, value), value: value}
}

// authorization is the Authorization header of a credential: "<scheme>
// <value>", or the value alone when scheme is "".
func authorization(scheme, value string) string {
	if scheme == "" {
		return value
	}
	return scheme + " " + value
}

type headerAuth struct{ header, value string }

func (a headerAuth) Apply(_ context.Context, r *http.Request) (string, error) {
	r.Header.Set("Authorization", a.header)
	return a.value, nil
}

func (headerAuth) Renew(context.Context, string) error { return ErrCannotRenew }

// TokenAuth sends "Authorization: <scheme> <token>" ("Bearer" for OAuth
// 2.0; "" sends the token raw, as PagerTree v3 wants) with tokens from fetch
// (a clientcredentials.Config's Token method, which fetches a new token per
// call, or a login; a token without an expiry is kept until refused). It keeps a token until shortly before its expiry
// (oauth2.Token.Valid), fetches one at a time (concurrent callers wait for
// the same fetch, each as long as its own ctx allows), and Renew forces one
// new fetch per refused token: a 401 with a token the server considers
// expired gets one fresh try, and a second 401 with the same token ends the
// call (ErrCannotRenew).
func TokenAuth(scheme string, fetch func(ctx context.Context) (*oauth2.Token, error)) Auth {
	return &tokenAuth{scheme: scheme, fetch: fetch}
}

type tokenAuth struct {
	scheme string
	fetch  func(ctx context.Context) (*oauth2.Token, error)

	mu      sync.Mutex
	tok     *oauth2.Token // the last token fetched; nil before the first
	renewed string        // the access token a forced fetch last replaced
	flight  *tokenFetch   // the fetch under way, if any
}

// tokenFetch is one call of fetch that callers wait for together.
type tokenFetch struct {
	done chan struct{} // closed when tok and err are set
	tok  *oauth2.Token
	err  error
}

func (a *tokenAuth) Apply(ctx context.Context, r *http.Request) (string, error) {
	tok, err := a.token(ctx, false, "")
	if err != nil {
		return "", err
	}
	r.Header.Set("Authorization", authorization(a.scheme, tok.AccessToken))
	return tok.AccessToken, nil
}

func (a *tokenAuth) Renew(ctx context.Context, used string) error {
	_, err := a.token(ctx, true, used)
	return err
}

// token returns a token to send. Unforced, it is the kept token while
// valid, else a fresh one. Forced (Renew), it fetches a token to replace
// used, unless the kept token is no longer used (nothing to do) or a
// forced fetch already replaced used and got it back (ErrCannotRenew).
func (a *tokenAuth) token(ctx context.Context, force bool, used string) (*oauth2.Token, error) {
	for {
		a.mu.Lock()
		f := a.flight
		if f == nil {
			switch {
			case !force && a.tok.Valid():
				tok := a.tok
				a.mu.Unlock()
				return tok, nil
			case force && (a.tok == nil || a.tok.AccessToken != used):
				a.mu.Unlock()
				return nil, nil
			case force && a.renewed == used:
				a.mu.Unlock()
				return nil, ErrCannotRenew
			}
			if force {
				a.renewed = used
			}
			f = &tokenFetch{done: make(chan struct{})}
			a.flight = f
			a.mu.Unlock()
			return a.run(ctx, f)
		}
		a.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a token: %w", ctx.Err())
		}
		switch {
		case f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)):
			// The caller that fetched gave up; this one has not.
			continue
		case f.err != nil:
			return nil, f.err
		case !force:
			return f.tok, nil
		case f.tok.AccessToken != used:
			return nil, nil
		}
		// The fetch waited for returned used itself: look again.
	}
}

// run makes the fetch f stands for, on behalf of every caller waiting for
// it. Its token is used by those callers even when it is already close to
// its expiry, so that a short-lived token cannot make them fetch forever.
func (a *tokenAuth) run(ctx context.Context, f *tokenFetch) (*oauth2.Token, error) {
	tok, err := a.fetch(ctx)
	switch {
	case err != nil:
		err = fmt.Errorf("getting a token: %w", err)
	case tok == nil || tok.AccessToken == "":
		err = errors.New("getting a token: the token source returned no access token")
	}
	a.mu.Lock()
	if err == nil {
		a.tok = tok
	} else {
		tok = nil
	}
	a.flight = nil
	f.tok, f.err = tok, err
	a.mu.Unlock()
	close(f.done)
	return tok, err
}

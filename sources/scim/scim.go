// Package scim is the SCIM 2.0 source (RFC 7643, RFC 7644): it reads users,
// groups and group memberships from any service provider that exposes SCIM
// for reading (Microsoft Entra's /rp/scim, identity gateways, HR systems),
// with a static bearer token or OAuth 2.0 client credentials, and returns
// one whole Snapshot.
//
// Requests: /ServiceProviderConfig once per fetch (to learn whether the
// server filters and pages, and its largest page), every user once (/Users
// paged by startIndex and count), the groups group_filter picks (/Groups,
// paged the same way, with their members), and one GET /Groups/{id} per
// member group outside group_filter (nested groups are flattened, cycles
// end): 1 + ceil(U/N) + ceil(G/N) + the nested groups outside the filter,
// N the server's largest page (at most 1000; 100 when it does not say).
// Every user is read because a user who left every on-call group is not a
// leaver; only one gone from the directory (or active: false) is.
//
// Without filtering on the server, every group is read and group_filter
// applied here. Without paging, each list is one request: a server that
// then returns fewer groups than totalResults fails the fetch, and one that
// returns fewer users has each group member read by id (GET /Users/{id}),
// so only members are known that run (logged as a warning).
package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/httpx"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/scim/internal/filter"
)

// maxAnswerBytes bounds one answer. A page of groups carries every
// member of each (SCIM cannot page a group's members): 100 groups of 1,000
// members is some 8 MB, beyond httpx's default.
const maxAnswerBytes = 64 << 20

// accept is sent on every request: SCIM's media type, and plain JSON,
// which RFC 7644 §8.1 has servers accept too.
var accept = http.Header{"Accept": {"application/scim+json, application/json"}}

// Source reads one SCIM service provider.
type Source struct {
	name   string
	cfg    *Config
	api    *httpx.Client
	log    *zap.Logger
	base   *url.URL    // cfg.BaseURL, for the next-page URLs
	filter filter.Expr // group_filter parsed, for servers that cannot filter; nil when it does not parse
	// filterErr is why group_filter does not parse here (a server may still
	// take it: extensions, operators this parser lacks).
	filterErr error
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Checker = (*Source)(nil)
)

// New builds a SCIM source from its *Config; it is a sources.Factory. It
// connects nowhere.
func New(name string, settings any, opts sources.Options) (sources.Source, error) {
	cfg, err := config.Settings[*Config](name, "scim", settings)
	if err != nil {
		return nil, err
	}
	log := opts.Logger()
	auth := httpx.HeaderAuth("Bearer", cfg.BearerToken)
	secrets := []string{cfg.BearerToken}
	if o := cfg.OAuth2; o != nil {
		auth = httpx.TokenAuth("Bearer", tokenFetcher(o, &http.Client{Timeout: cfg.Timeout}))
		secrets = append(secrets, o.ClientSecret)
	}
	api, err := httpx.New(httpx.Config{
		Service:        "scim",
		BaseURL:        cfg.BaseURL,
		Auth:           auth,
		Concurrency:    cfg.Concurrency,
		Timeout:        cfg.Timeout,
		Observer:       opts.Observer,
		Logger:         log,
		ParseError:     parseError,
		Secrets:        secrets,
		MaxAnswerBytes: maxAnswerBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", name, err)
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("source %q: scim.base_url is not a URL", name) // httpx.New took it: not reached
	}
	s := &Source{name: name, cfg: cfg, api: api, log: log, base: base}
	if cfg.GroupFilter != "" {
		s.filter, s.filterErr = filter.Parse(cfg.GroupFilter)
	}
	return s, nil
}

// tokenFetcher returns the client-credentials token request of o. The
// client authenticates the way the endpoint takes (x/oauth2 tries HTTP
// Basic, which RFC 6749 has every server support, then the body, and keeps
// what worked).
func tokenFetcher(o *OAuth2, hc *http.Client) func(context.Context) (*oauth2.Token, error) {
	cc := &clientcredentials.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		TokenURL:     o.TokenURL,
		Scopes:       o.Scopes,
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err != nil {
			return nil, tokenError(err, o.ClientSecret)
		}
		return tok, nil
	}
}

// tokenHints explain the RFC 6749 §5.2 errors an admin can fix.
var tokenHints = map[string]string{
	"invalid_client":         "the token endpoint refused oauth2.client_id or oauth2.client_secret",
	"unauthorized_client":    "the client may not use the client-credentials grant",
	"invalid_scope":          "a scope in oauth2.scopes is unknown or not granted to the client",
	"unsupported_grant_type": "the token endpoint does not offer the client-credentials grant",
}

// tokenError turns a failed token request into one plain line, without
// the secret sent.
func tokenError(err error, secret string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	msg := fmt.Sprintf("the token endpoint answered %d", status)
	if re.ErrorCode != "" {
		msg += " " + re.ErrorCode
	}
	if hint, ok := tokenHints[re.ErrorCode]; ok {
		msg += ": " + hint
	}
	if d := strings.TrimSpace(re.ErrorDescription); d != "" {
		if secret != "" {
			d = strings.ReplaceAll(d, secret, "[redacted]")
		}
		msg += fmt.Sprintf(" (%.300s)", d)
	}
	return errors.New(msg)
}

// parseError reads an RFC 7644 §3.12 error body: scimType as the code, and
// detail. Bodies of another shape give an OAuth-style error_description or
// a message when they have one.
func parseError(_ int, body []byte) (string, []string) {
	var b struct {
		ScimType         string `json:"scimType"`
		Detail           string `json:"detail"`
		Message          string `json:"message"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", nil
	}
	return b.ScimType, []string{b.Detail, b.Message, b.ErrorDescription}
}

// explain adds a plain hint to the errors an admin can fix.
func (s *Source) explain(err error) error {
	var apiErr *httpx.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch {
	case apiErr.Status == http.StatusUnauthorized && s.cfg.OAuth2 != nil:
		return fmt.Errorf("%w: the server refused the token the oauth2 client got (is the client granted access to the SCIM API?)", err)
	case apiErr.Status == http.StatusUnauthorized:
		return fmt.Errorf("%w: the server refused the bearer token (check scim.bearer_token; it may be revoked or expired)", err)
	case apiErr.Status == http.StatusForbidden:
		return fmt.Errorf("%w: the token may not read users and groups (grant it read access to /Users and /Groups)", err)
	case apiErr.Status == http.StatusNotFound && (apiErr.Route == "/Users" || apiErr.Route == "/Groups"):
		return fmt.Errorf("%w: check scim.base_url (the SCIM root, with /Users and /Groups below it)", err)
	case strings.EqualFold(apiErr.Code, "invalidFilter"):
		return fmt.Errorf("%w: check scim.group_filter", err)
	case strings.EqualFold(apiErr.Code, "tooMany"):
		return fmt.Errorf("%w: the server will not list this many resources at once; narrow scim.group_filter", err)
	}
	return err
}

// Name returns the configured source name.
func (s *Source) Name() string { return s.name }

// Check reads /ServiceProviderConfig, then one page (of one) of the groups
// group_filter picks and of the users: the token works and may read both.
func (s *Source) Check(ctx context.Context) error {
	caps, err := s.discover(ctx)
	if err != nil {
		return err
	}
	if err := s.checkFilter(caps); err != nil {
		return err
	}
	groups := s.groupQuery(caps)
	groups.Set("attributes", "displayName")
	users := url.Values{"attributes": {"displayName"}}
	for _, q := range []struct {
		route string
		query url.Values
	}{{"/Groups", groups}, {"/Users", users}} {
		q.query.Set("count", "1")
		if caps.paging {
			q.query.Set("startIndex", "1")
		}
		var page listResponse[json.RawMessage]
		req := httpx.Request{Method: http.MethodGet, Route: q.route, Path: q.route, Query: q.query, Header: accept}
		if _, err := s.api.DecodeJSON(ctx, req, &page); err != nil {
			return s.explain(err)
		}
	}
	return nil
}

// checkFilter refuses a group_filter that neither the server nor this
// source can apply.
func (s *Source) checkFilter(caps capabilities) error {
	if s.cfg.GroupFilter != "" && !caps.filter && s.filter == nil {
		return fmt.Errorf("scim: the server cannot filter, and group_filter cannot be applied here either: %v", s.filterErr)
	}
	return nil
}

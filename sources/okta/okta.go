// Package okta is the Okta source: it reads users, groups and group
// memberships through Okta's Management API with an API token (SSWS) or
// an OAuth 2.0 service app (private_key_jwt), and returns one whole
// Snapshot.
//
// Requests: every user once (/users, 200 a page), the groups group_search
// picks (/groups), and each group's members (/groups/{id}/users):
// ceil(U/200) + ceil(G/200) + the sum over groups of ceil(members/200).
// Every user is read because a user who left every on-call group is not a
// leaver; only one gone from the directory (or suspended, deprovisioned,
// staged) is. Okta groups do not nest.
package okta

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ptsync/ptsync/internal/clientassert"
	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/httpx"
	"github.com/ptsync/ptsync/sources"
)

// pageSize is the limit every list asks for: the largest /users takes.
const pageSize = 200

// Source reads one Okta org.
type Source struct {
	name string
	cfg  *Config
	api  *httpx.Client
	// logs reads the System Log for Watch, with a token of its own scope
	// when an OAuth service app authenticates.
	logs *httpx.Client
	log  *zap.Logger
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Checker = (*Source)(nil)
	_ sources.Watcher = (*Source)(nil)
)

// New builds an Okta source from its *Config; it is a sources.Factory. It
// reads the private key file, when set, but connects nowhere.
func New(name string, settings any, opts sources.Options) (sources.Source, error) {
	cfg, err := config.Settings[*Config](name, "okta", settings)
	if err != nil {
		return nil, err
	}
	log := opts.Logger()
	auth := func([]string) httpx.Auth { return httpx.HeaderAuth("SSWS", cfg.APIToken) }
	if cfg.ClientID != "" {
		key, err := clientassert.LoadKey(cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("source %q: okta.private_key_file: %w", name, err)
		}
		auth = func(scopes []string) httpx.Auth {
			return httpx.TokenAuth("Bearer", tokenFetcher(cfg, scopes, key, &http.Client{Timeout: cfg.Timeout}))
		}
	}
	client := func(scopes []string, concurrency int) (*httpx.Client, error) {
		api, err := httpx.New(httpx.Config{
			Service:     "okta",
			BaseURL:     cfg.BaseURL,
			Auth:        auth(scopes),
			Concurrency: concurrency,
			Timeout:     cfg.Timeout,
			Observer:    opts.Observer,
			Logger:      log,
			ParseError:  parseError,
			Gate:        newRateGate(concurrency),
			RetryAfter:  untilReset,
			Secrets:     []string{cfg.APIToken},
		})
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", name, err)
		}
		return api, nil
	}
	api, err := client(cfg.Scopes, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	// The feed polls one request at a time.
	logs, err := client([]string{logsScope}, 1)
	if err != nil {
		return nil, err
	}
	return &Source{name: name, cfg: cfg, api: api, logs: logs, log: log}, nil
}

// tokenFetcher returns the service app's token request for scopes: client
// credentials with a fresh private_key_jwt assertion each time (Okta
// refuses an assertion's jti a second time).
func tokenFetcher(cfg *Config, scopes []string, key *rsa.PrivateKey, hc *http.Client) func(context.Context) (*oauth2.Token, error) {
	signer := clientassert.Signer{ClientID: cfg.ClientID, Key: key}
	cc := clientcredentials.Config{
		ClientID:  cfg.ClientID,
		TokenURL:  cfg.TokenURL,
		Scopes:    scopes,
		AuthStyle: oauth2.AuthStyleInParams,
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		assertion, err := signer.Sign(cfg.TokenURL, time.Now())
		if err != nil {
			return nil, err
		}
		req := cc
		req.EndpointParams = url.Values{"client_assertion_type": {clientassert.Type}, "client_assertion": {assertion}}
		tok, err := req.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err != nil {
			return nil, tokenError(err, scopes)
		}
		return tok, nil
	}
}

// tokenHints explain the OAuth errors of Okta's token endpoint.
var tokenHints = map[string]string{
	"invalid_client":   "the service app refused the client_id or the signed assertion (is the public key registered on the app?)",
	"invalid_scope":    "a requested scope is not an Okta scope; use okta.users.read and okta.groups.read",
	"consent_required": "the service app is granted none of the requested scopes (Okta Admin Console → the app → Okta API Scopes)",
}

// tokenError turns a failed token request for scopes into one plain line.
func tokenError(err error, scopes []string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	msg := fmt.Sprintf("the token endpoint answered %d %s", status, re.ErrorCode)
	if hint, ok := tokenHints[re.ErrorCode]; ok {
		msg += ": " + hint
	} else if re.ErrorDescription != "" {
		msg += ": " + re.ErrorDescription
	}
	if re.ErrorCode == "consent_required" {
		msg += "; requested: " + strings.Join(scopes, " ")
	}
	return errors.New(msg)
}

// parseError reads Okta's {"errorCode","errorSummary","errorCauses"} body.
func parseError(_ int, body []byte) (string, []string) {
	var b struct {
		Code    string `json:"errorCode"`
		Summary string `json:"errorSummary"`
		Causes  []struct {
			Summary string `json:"errorSummary"`
		} `json:"errorCauses"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", nil
	}
	messages := []string{b.Summary}
	for _, c := range b.Causes {
		messages = append(messages, c.Summary)
	}
	return b.Code, messages
}

// apiHints explain Okta's error codes an admin can fix.
var apiHints = map[string]string{
	"E0000011": "the API token is invalid or revoked",
	"E0000005": "the request was not authenticated (check api_token)",
	"E0000006": "the token may not read users and groups: a read-only admin token, or the okta.users.read and okta.groups.read scopes, are needed",
}

// explain adds the plain hint of an Okta error code to err.
func explain(err error) error {
	var apiErr *httpx.APIError
	if errors.As(err, &apiErr) {
		if hint, ok := apiHints[apiErr.Code]; ok {
			return fmt.Errorf("%w: %s", err, hint)
		}
		if apiErr.Status == http.StatusForbidden {
			return fmt.Errorf("%w: the token may not read users and groups (a read-only admin token, or the okta.users.read and okta.groups.read scopes)", err)
		}
	}
	return err
}

// Name returns the configured source name.
func (s *Source) Name() string { return s.name }

// Check reads one page (of one) of the groups group_search picks.
func (s *Source) Check(ctx context.Context) error {
	q := s.groupQuery()
	q.Set("limit", "1")
	var groups []oktaGroup
	_, err := s.api.DecodeJSON(ctx, httpx.Request{Method: http.MethodGet, Route: "/groups", Path: "/groups", Query: q}, &groups)
	return explain(err)
}

func (s *Source) groupQuery() url.Values {
	q := url.Values{"limit": {fmt.Sprint(pageSize)}}
	if s.cfg.GroupSearch != "" {
		q.Set("search", s.cfg.GroupSearch)
	}
	return q
}

type oktaUser struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Email        string `json:"email"`
		DisplayName  string `json:"displayName"`
		FirstName    string `json:"firstName"`
		LastName     string `json:"lastName"`
		MobilePhone  string `json:"mobilePhone"`
		PrimaryPhone string `json:"primaryPhone"`
	} `json:"profile"`
}

type oktaGroup struct {
	ID      string `json:"id"`
	Profile struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"profile"`
}

// disabled are the statuses of people who are not to be paged. RECOVERY,
// LOCKED_OUT, PASSWORD_EXPIRED and PROVISIONED are employees whose login
// is in some state: a locked-out engineer is still on call.
var disabled = map[string]bool{"SUSPENDED": true, "DEPROVISIONED": true, "STAGED": true}

func (u oktaUser) user() sources.User {
	name := strings.TrimSpace(u.Profile.DisplayName)
	if name == "" {
		name = strings.TrimSpace(u.Profile.FirstName + " " + u.Profile.LastName)
	}
	phone := u.Profile.MobilePhone
	if strings.TrimSpace(phone) == "" {
		phone = u.Profile.PrimaryPhone
	}
	return sources.User{
		ID:       u.ID,
		Email:    u.Profile.Email,
		Name:     name,
		Phone:    strings.TrimSpace(phone),
		Disabled: disabled[strings.ToUpper(u.Status)],
	}
}

// each reads every page of a list, following Link: rel="next" as given,
// and hands each item to fn. A failure on any page fails the whole read.
func each[T any](ctx context.Context, api *httpx.Client, first httpx.Request, fn func(T) error) error {
	return explain(httpx.Pages(ctx, api, first, func(p *[]T, resp *httpx.Response) (string, error) {
		for _, item := range *p {
			if err := fn(item); err != nil {
				return "", err
			}
		}
		return httpx.LinkNext(resp.Header), nil
	}))
}

// memo is everything a fetch read, in the order Okta listed it: what
// Fetch builds a snapshot from, and what Refresh patches (refresh.go).
type memo struct {
	users   []oktaUser // /users: every user but the DEPROVISIONED
	groups  []oktaGroup
	members [][]oktaUser // by index of groups
}

// Fetch reads every user, the searched groups and their members. It
// returns an error and no snapshot when any request fails for good.
func (s *Source) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	snap, _, err := s.FetchMemo(ctx)
	return snap, err
}

// read reads what Fetch does.
func (s *Source) read(ctx context.Context) (*memo, error) {
	m := &memo{}
	usersReq := httpx.Request{Method: http.MethodGet, Route: "/users", Path: "/users", Query: url.Values{"limit": {fmt.Sprint(pageSize)}}}
	err := each(ctx, s.api, usersReq, func(u oktaUser) error {
		m.users = append(m.users, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if m.groups, err = s.readGroups(ctx); err != nil {
		return nil, err
	}
	if m.members, err = s.members(ctx, m.groups, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// members reads the members of each of groups, concurrently, but for the
// groups kept gives members of (a refresh's unchanged ones).
func (s *Source) members(ctx context.Context, groups []oktaGroup, kept func(g oktaGroup) ([]oktaUser, bool)) ([][]oktaUser, error) {
	out := make([][]oktaUser, len(groups))
	var stale []int
	for i, g := range groups {
		if kept != nil {
			if l, ok := kept(g); ok {
				out[i] = l
				continue
			}
		}
		stale = append(stale, i)
	}
	err := s.api.ForEach(ctx, len(stale), func(ctx context.Context, k int) (err error) {
		i := stale[k]
		out[i], err = s.readMembers(ctx, groups[i].ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readGroups lists the groups group_search picks.
func (s *Source) readGroups(ctx context.Context) ([]oktaGroup, error) {
	var groups []oktaGroup
	groupsReq := httpx.Request{Method: http.MethodGet, Route: "/groups", Path: "/groups", Query: s.groupQuery()}
	err := each(ctx, s.api, groupsReq, func(g oktaGroup) error {
		groups = append(groups, g)
		return nil
	})
	return groups, err
}

// readMembers lists one group's members.
func (s *Source) readMembers(ctx context.Context, groupID string) ([]oktaUser, error) {
	var members []oktaUser
	req := httpx.Request{Method: http.MethodGet, Route: "/groups/{id}/users",
		Path: "/groups/" + url.PathEscape(groupID) + "/users", Query: url.Values{"limit": {fmt.Sprint(pageSize)}}}
	err := each(ctx, s.api, req, func(u oktaUser) error {
		members = append(members, u)
		return nil
	})
	return members, err
}

// build makes the snapshot of what m holds.
func (s *Source) build(m *memo) (*sources.Snapshot, error) {
	b := sources.NewBuilder(s.name, s.log)
	refs := map[string]sources.UserRef{}
	add := func(u oktaUser) error {
		ref, err := b.AddUser(u.user())
		if err != nil {
			return fmt.Errorf("okta: %w", err)
		}
		refs[u.ID] = ref
		return nil
	}
	for _, u := range m.users {
		if err := add(u); err != nil {
			return nil, err
		}
	}
	for i, g := range m.groups {
		gref := b.AddGroup(sources.Group{ID: g.ID, Name: g.Profile.Name, Description: g.Profile.Description})
		for _, u := range m.members[i] {
			if _, ok := refs[u.ID]; !ok {
				// /users leaves DEPROVISIONED users out; a group may still
				// list one. Taken from the member list, they count as the
				// disabled users they are.
				if err := add(u); err != nil {
					return nil, err
				}
			}
			b.AddMember(gref, refs[u.ID])
		}
	}
	snap := b.Snapshot(false, 1)
	s.log.Debug("okta fetch done", zap.Int("users", len(snap.Users)), zap.Int("groups", len(snap.Groups)),
		zap.Any("skipped", snap.Skipped))
	return snap, nil
}

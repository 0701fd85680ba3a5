// Package msgraph is the Microsoft Entra ID source: it reads users, groups
// and group memberships through Microsoft Graph with an application's
// client credentials (a secret or a certificate) and returns one whole
// Snapshot.
//
// Requests: every user once (/users, $top=999 with an explicit $select),
// the groups group_filter picks (/groups), and each group's members as ids
// (/transitiveMembers when nested, else /members): ceil(U/999) + ceil(G/999)
// + the sum over groups of ceil(members/999). Every user is read because a
// user who left every on-call group is not a leaver; only a user gone from
// the directory (or disabled) is. Reading members with their user fields
// in the same pages (the OData cast /transitiveMembers/microsoft.graph.user)
// would need those same /users pages on top, so it saves no request.
package msgraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
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

// pageSize is Graph's largest $top (its default is 100).
const pageSize = 999

// scope asks for the application permissions granted to the app.
const scope = "https://graph.microsoft.com/.default"

// userFields are read for every user; without an explicit $select Graph
// leaves accountEnabled out.
const userFields = "id,accountEnabled,mail,userPrincipalName,displayName,mobilePhone,businessPhones"

// Source reads one Entra ID tenant.
type Source struct {
	name       string
	cfg        *Config
	api        *httpx.Client
	log        *zap.Logger
	readOwners bool
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Checker = (*Source)(nil)
)

// New builds a Graph source from its *Config; it is a sources.Factory. It
// reads the certificate and key files, when set, but connects nowhere.
func New(name string, settings any, opts sources.Options) (sources.Source, error) {
	cfg, err := config.Settings[*Config](name, "msgraph", settings)
	if err != nil {
		return nil, err
	}
	log := opts.Logger()
	fetch, err := tokenFetcher(cfg, &http.Client{Timeout: cfg.Timeout})
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", name, err)
	}
	api, err := httpx.New(httpx.Config{
		Service:     "msgraph",
		BaseURL:     cfg.BaseURL,
		Auth:        httpx.TokenAuth("Bearer", fetch),
		Concurrency: cfg.Concurrency,
		Timeout:     cfg.Timeout,
		Observer:    opts.Observer,
		Logger:      log,
		ParseError:  parseError,
		Secrets:     []string{cfg.ClientSecret},
	})
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", name, err)
	}
	return &Source{name: name, cfg: cfg, api: api, log: log, readOwners: opts.ReadOwners}, nil
}

// tokenFetcher returns the client-credentials token request of cfg: with
// the secret in the body (Entra ID's documented way; x/oauth2's auto
// detection would try a Basic header first and cost a second request on
// every failure), or with a fresh certificate-signed assertion each time.
func tokenFetcher(cfg *Config, hc *http.Client) (func(context.Context) (*oauth2.Token, error), error) {
	cc := clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       []string{scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	var signer *clientassert.Signer
	if cfg.CertificateFile != "" {
		cert, err := clientassert.LoadCertificate(cfg.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("msgraph.certificate_file: %w", err)
		}
		key, err := clientassert.LoadKey(cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("msgraph.private_key_file: %w", err)
		}
		if err := clientassert.MatchKey(cert, key); err != nil {
			return nil, fmt.Errorf("msgraph.private_key_file: %w", err)
		}
		signer = &clientassert.Signer{
			ClientID: cfg.ClientID,
			Key:      key,
			Alg:      clientassert.PS256,
			Header:   map[string]any{"x5t#S256": clientassert.Thumbprint(cert)},
		}
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
		req := cc
		if signer != nil {
			assertion, err := signer.Sign(cfg.TokenURL, time.Now())
			if err != nil {
				return nil, err
			}
			req.EndpointParams = url.Values{"client_assertion_type": {clientassert.Type}, "client_assertion": {assertion}}
		}
		tok, err := req.Token(ctx)
		if err != nil {
			return nil, tokenError(err)
		}
		return tok, nil
	}, nil
}

// hints explain the token endpoint's AADSTS codes an admin can fix.
var hints = map[string]string{
	"7000215": "the client secret is wrong",
	"7000222": "the client secret has expired",
	"700016":  "no such application in this tenant (check client_id and tenant_id)",
	"90002":   "no such tenant (check tenant_id)",
	"700027":  "the certificate is not registered on the application, or the assertion's signature is wrong",
	"7000218": "the request has no client_secret or certificate",
}

var aadstsCode = regexp.MustCompile(`AADSTS(\d+)`)

// tokenError turns a failed token request into one plain line: the AADSTS
// code with its hint, never the secret or assertion sent.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	code := ""
	if m := aadstsCode.FindStringSubmatch(re.ErrorDescription); m != nil {
		code = m[1]
	} else if m := aadstsCode.FindStringSubmatch(string(re.Body)); m != nil {
		code = m[1]
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	msg := fmt.Sprintf("the token endpoint answered %d %s", status, re.ErrorCode)
	if code != "" {
		msg += " (AADSTS" + code + ")"
	}
	if hint, ok := hints[code]; ok {
		msg += ": " + hint
	}
	return errors.New(msg)
}

// parseError reads Graph's {"error":{"code","message"}} error body.
func parseError(_ int, body []byte) (string, []string) {
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", nil
	}
	return b.Error.Code, []string{b.Error.Message}
}

// Name returns the configured source name.
func (s *Source) Name() string { return s.name }

// Check gets a token and reads one page (of one) of the groups the filter
// picks.
func (s *Source) Check(ctx context.Context) error {
	q := s.groupQuery()
	q.Set("$top", "1")
	var page listPage[graphGroup]
	_, err := s.api.DecodeJSON(ctx, httpx.Request{Method: http.MethodGet, Route: "/groups", Path: "/groups", Query: q}, &page)
	return err
}

func (s *Source) groupQuery() url.Values {
	q := url.Values{"$select": {"id,displayName,description"}, "$top": {fmt.Sprint(pageSize)}}
	if s.cfg.GroupFilter != "" {
		q.Set("$filter", s.cfg.GroupFilter)
	}
	return q
}

// listPage is one page of a Graph collection.
type listPage[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

type graphUser struct {
	ID                string   `json:"id"`
	AccountEnabled    *bool    `json:"accountEnabled"`
	Mail              string   `json:"mail"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	MobilePhone       string   `json:"mobilePhone"`
	BusinessPhones    []string `json:"businessPhones"`
}

type graphGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
}

type graphObject struct {
	Type string `json:"@odata.type"`
	ID   string `json:"id"`
}

// each reads every page of a collection, following @odata.nextLink as
// given, and hands each item to fn. A failure on any page fails the whole
// read: a partial list would be taken for a shorter one.
func each[T any](ctx context.Context, api *httpx.Client, first httpx.Request, fn func(T) error) error {
	return httpx.Pages(ctx, api, first, func(p *listPage[T], _ *httpx.Response) (string, error) {
		for _, item := range p.Value {
			if err := fn(item); err != nil {
				return "", err
			}
		}
		return p.NextLink, nil
	})
}

// memberList is one group's members as read, before they join the builder.
type memberList struct {
	users   []string
	skipped map[string]int // non-user members by reason
	owners  []string
	// groups are the groups nested in it at any depth (nested only): a
	// change to one of their members is a change to its members.
	groups []string
}

// memo is everything a fetch read, in the order Graph listed it: what
// Fetch builds a snapshot from, and what Refresh patches (refresh.go).
type memo struct {
	users   []graphUser
	groups  []graphGroup
	members []memberList // by index of groups
}

// Fetch reads every user, the filtered groups and their members. It
// returns an error and no snapshot when any request fails for good.
func (s *Source) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	snap, _, err := s.FetchMemo(ctx)
	return snap, err
}

// read reads what Fetch does.
func (s *Source) read(ctx context.Context) (*memo, error) {
	m := &memo{}
	usersReq := httpx.Request{Method: http.MethodGet, Route: "/users", Path: "/users",
		Query: url.Values{"$select": {userFields}, "$top": {fmt.Sprint(pageSize)}}}
	err := each(ctx, s.api, usersReq, func(u graphUser) error {
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
func (s *Source) members(ctx context.Context, groups []graphGroup, kept func(g graphGroup) (memberList, bool)) ([]memberList, error) {
	out := make([]memberList, len(groups))
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

// readGroups lists the groups group_filter picks.
func (s *Source) readGroups(ctx context.Context) ([]graphGroup, error) {
	var groups []graphGroup
	groupsReq := httpx.Request{Method: http.MethodGet, Route: "/groups", Path: "/groups", Query: s.groupQuery()}
	err := each(ctx, s.api, groupsReq, func(g graphGroup) error {
		groups = append(groups, g)
		return nil
	})
	return groups, err
}

// build makes the snapshot of what m holds.
func (s *Source) build(m *memo) (*sources.Snapshot, error) {
	b := sources.NewBuilder(s.name, s.log)
	refs := make(map[string]sources.UserRef, len(m.users))
	for _, u := range m.users {
		ref, err := b.AddUser(s.user(u))
		if err != nil {
			return nil, fmt.Errorf("msgraph: %w", err)
		}
		refs[u.ID] = ref
	}
	outside := 0
	for i, g := range m.groups {
		gref := b.AddGroup(sources.Group{ID: g.ID, Name: g.DisplayName, Description: g.Description})
		for _, id := range m.members[i].users {
			ref, ok := refs[id]
			if !ok {
				outside++ // created after /users was read; the next run has them
				continue
			}
			b.AddMember(gref, ref)
		}
		for _, id := range m.members[i].owners {
			if ref, ok := refs[id]; ok {
				b.AddOwner(gref, ref)
			}
		}
		for reason, n := range m.members[i].skipped {
			b.Skip(reason, n)
		}
	}
	b.Skip(sources.SkipOutsideScope, outside)
	// Graph flattened nesting already (transitiveMembers) or was asked not to.
	snap := b.Snapshot(false, 1)
	s.log.Debug("msgraph fetch done", zap.Int("users", len(snap.Users)), zap.Int("groups", len(snap.Groups)),
		zap.Any("skipped", snap.Skipped))
	return snap, nil
}

// user maps a Graph user; an account Graph says nothing of is enabled.
func (s *Source) user(u graphUser) sources.User {
	email := u.Mail
	if s.cfg.EmailAttribute == "userPrincipalName" {
		email = u.UserPrincipalName
	}
	phone := u.MobilePhone
	if phone == "" && len(u.BusinessPhones) > 0 {
		phone = u.BusinessPhones[0]
	}
	return sources.User{
		ID:       u.ID,
		Email:    email,
		Name:     strings.TrimSpace(u.DisplayName),
		Phone:    strings.TrimSpace(phone),
		Disabled: u.AccountEnabled != nil && !*u.AccountEnabled,
	}
}

// readMembers reads one group's members as ids, and its owners when a team
// rule wants them. Members that are not users (devices, contacts, service
// principals) are counted by type; nested groups are not members in their
// own right (transitiveMembers lists their members too).
func (s *Source) readMembers(ctx context.Context, groupID string) (memberList, error) {
	relation := "members"
	if s.cfg.Nested {
		relation = "transitiveMembers"
	}
	list := memberList{skipped: map[string]int{}}
	path := "/groups/" + url.PathEscape(groupID) + "/" + relation
	req := httpx.Request{Method: http.MethodGet, Route: "/groups/{id}/" + relation, Path: path,
		Query: url.Values{"$select": {"id"}, "$top": {fmt.Sprint(pageSize)}}}
	err := each(ctx, s.api, req, func(o graphObject) error {
		switch kind := strings.TrimPrefix(o.Type, "#microsoft.graph."); kind {
		case "user":
			list.users = append(list.users, o.ID)
		case "group":
			if s.cfg.Nested {
				list.groups = append(list.groups, o.ID)
			}
		default:
			list.skipped["member_"+strings.ToLower(kind)]++
		}
		return nil
	})
	if err != nil || !s.readOwners {
		return list, err
	}
	ownersReq := httpx.Request{Method: http.MethodGet, Route: "/groups/{id}/owners", Path: "/groups/" + url.PathEscape(groupID) + "/owners",
		Query: url.Values{"$select": {"id"}, "$top": {fmt.Sprint(pageSize)}}}
	err = each(ctx, s.api, ownersReq, func(o graphObject) error {
		if o.Type == "#microsoft.graph.user" {
			list.owners = append(list.owners, o.ID)
		}
		return nil
	})
	return list, err
}

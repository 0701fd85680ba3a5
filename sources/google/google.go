// Package google is the Google Workspace source: it reads users, groups
// and group memberships through the Admin SDK Directory API as a service
// account with domain-wide delegation, acting as an admin (subject), and
// returns one whole Snapshot.
//
// Requests, each list read to its last nextPageToken: every user once
// (users.list, 500 a page), the groups group_query picks (groups.list, 200
// a page) and each group's members (members.list, 200 a page; with
// includeDerivedMembership when Google expands nesting): ceil(U/500) +
// ceil(G/200) + the sum over groups of ceil(members/200). Owners, when a
// team rule wants them, cost one more members.list (roles=OWNER,MANAGER)
// per group under derived membership, where a group's own members cannot
// be told from inherited ones; read without it they come with the member
// pages. Nesting expanded here adds ceil(members/200) per nested group,
// each read once however many groups hold it.
//
// Every user is read because a user who left every on-call group is not a
// leaver; only one gone from the directory (or suspended, or archived) is.
//
// This is three list calls over the shared HTTP client (internal/httpx)
// and golang.org/x/oauth2/jwt for the token. The generated
// google.golang.org/api/admin/directory/v1 client would put 19 more
// modules into the ptsync binary (gRPC, OpenTelemetry, Google's auth
// libraries) and 7.6 MB (+32%); x/oauth2/google would add
// cloud.google.com/go/compute/metadata for what jwt.Config does alone.
package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/httpx"
	"github.com/ptsync/ptsync/sources"
)

// The largest maxResults of each list.
const (
	usersPageSize   = 500
	groupsPageSize  = 200
	membersPageSize = 200
)

// maxAttempts bounds the attempts of one request. Google answers its rate
// limits (403 userRateLimitExceeded and quotaExceeded, 429
// rateLimitExceeded) with no Retry-After and asks for exponential backoff:
// eight attempts back off for about 6 seconds in all on average and 13 at
// most (httpx's full jitter), twice the default's reach; more would stall a
// run on a lasting 5xx for little, the next run retrying anyway.
const maxAttempts = 8

// Partial responses: only the fields ptsync reads. A page of 500 users
// with every field is several times larger. phones is typed "any" in the
// API's schema, so it is selected whole (nothing can be picked inside).
const (
	userFields   = "nextPageToken,users(id,primaryEmail,name,suspended,archived,phones)"
	groupFields  = "nextPageToken,groups(id,email,name,description)"
	memberFields = "nextPageToken,members(id,email,role,type)"
)

// Routes, as errors and metrics name them.
const (
	routeUsers   = "/users"
	routeGroups  = "/groups"
	routeMembers = "/groups/{groupKey}/members"
)

// Source reads one Google Workspace account.
type Source struct {
	name       string
	cfg        *Config
	api        *httpx.Client
	base       *url.URL
	log        *zap.Logger
	readOwners bool
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Checker = (*Source)(nil)
)

// New builds a Google Workspace source from its *Config; it is a
// sources.Factory. It reads the service account key but connects nowhere.
func New(name string, settings any, opts sources.Options) (sources.Source, error) {
	cfg, err := config.Settings[*Config](name, "google", settings)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(cfg.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("source %q: google.credentials_file: %w", name, err)
	}
	log := opts.Logger()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	api, err := httpx.New(httpx.Config{
		Service:     "google",
		BaseURL:     cfg.BaseURL,
		Auth:        httpx.TokenAuth("Bearer", tokenFetcher(cfg, key, transport, cfg.Timeout)),
		Concurrency: cfg.Concurrency,
		Timeout:     cfg.Timeout,
		MaxAttempts: maxAttempts,
		Observer:    opts.Observer,
		Logger:      log,
		ParseError:  parseError,
		Throttled:   throttled,
	})
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", name, err)
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("source %q: google.base_url: %w", name, err)
	}
	return &Source{name: name, cfg: cfg, api: api, base: base, log: log, readOwners: opts.ReadOwners}, nil
}

// apiError is Google's JSON error body.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Errors  []struct {
			Message string `json:"message"`
			Domain  string `json:"domain"`
			Reason  string `json:"reason"`
		} `json:"errors"`
	} `json:"error"`
}

// parseError reads Google's {"error":{"code","message","errors":[{"reason"}],
// "status"}} body: the code is the first reason (else the status), the
// message the top-level one.
func parseError(_ int, body []byte) (string, []string) {
	var b apiError
	if json.Unmarshal(body, &b) != nil {
		return "", nil
	}
	code := b.Error.Status
	for _, e := range b.Error.Errors {
		if e.Reason != "" {
			code = e.Reason
			break
		}
	}
	msg := b.Error.Message
	if msg == "" && len(b.Error.Errors) > 0 {
		msg = b.Error.Errors[0].Message
	}
	return code, []string{msg}
}

// rateLimitReasons are the reasons of Google's "slow down" answers, which
// are to be retried with backoff. Any other 403 is a permission error.
var rateLimitReasons = map[string]bool{
	"userRateLimitExceeded": true, // 403: the per-user queries per minute
	"quotaExceeded":         true, // 403: concurrent requests of an operation
	"rateLimitExceeded":     true, // 429 (also seen on 403): per account
}

// throttled picks the 403s that are rate limits (429s are retried anyway).
func throttled(e *httpx.APIError) bool {
	return e.Status == http.StatusForbidden && rateLimitReasons[e.Code]
}

// apiHints explain the Directory API's refusals an admin can fix.
var apiHints = map[string]string{
	"forbidden":               "subject may not read users and groups: it must be an admin whose role can (Admin console → Account → Admin roles)",
	"insufficientPermissions": "the token lacks a Directory API scope: delegate the three read-only scopes to the service account's client id",
	"accessNotConfigured":     "enable the Admin SDK API in the service account's Google Cloud project",
	"authError":               "Google refused a fresh token; check the service account key and domain-wide delegation",
}

// explain adds the plain hint of a Directory API refusal to err.
func explain(err error) error {
	var apiErr *httpx.APIError
	if errors.As(err, &apiErr) {
		if hint, ok := apiHints[apiErr.Code]; ok {
			return fmt.Errorf("%w: %s", err, hint)
		}
	}
	return err
}

// Name returns the configured source name.
func (s *Source) Name() string { return s.name }

// Check gets a token and reads one page of one group group_query picks and
// one of one user: the token proves the scopes are delegated, the pages
// that subject may read groups and users (an admin role can allow one and
// not the other).
func (s *Source) Check(ctx context.Context) error {
	var page listPage
	groups := s.groupsRequest()
	groups.Query.Set("maxResults", "1")
	if _, err := s.api.DecodeJSON(ctx, groups, &page); err != nil {
		return explain(err)
	}
	users := s.usersRequest()
	users.Query.Set("maxResults", "1")
	_, err := s.api.DecodeJSON(ctx, users, &page)
	return explain(err)
}

func (s *Source) usersRequest() httpx.Request {
	return httpx.Request{Method: http.MethodGet, Route: routeUsers, Path: "/users", Query: url.Values{
		"customer":   {s.cfg.Customer},
		"maxResults": {strconv.Itoa(usersPageSize)},
		"projection": {"basic"},
		"fields":     {userFields},
	}}
}

func (s *Source) groupsRequest() httpx.Request {
	q := url.Values{
		"customer":   {s.cfg.Customer},
		"maxResults": {strconv.Itoa(groupsPageSize)},
		"fields":     {groupFields},
	}
	if s.cfg.GroupQuery != "" {
		q.Set("query", s.cfg.GroupQuery)
	}
	return httpx.Request{Method: http.MethodGet, Route: routeGroups, Path: "/groups", Query: q}
}

func (s *Source) membersRequest(groupID string, q url.Values) httpx.Request {
	q.Set("maxResults", strconv.Itoa(membersPageSize))
	q.Set("fields", memberFields)
	return httpx.Request{Method: http.MethodGet, Route: routeMembers,
		Path: "/groups/" + url.PathEscape(groupID) + "/members", Query: q}
}

// listPage is one page of users.list, groups.list or members.list.
type listPage struct {
	Users         []googleUser   `json:"users"`
	Groups        []googleGroup  `json:"groups"`
	Members       []googleMember `json:"members"`
	NextPageToken string         `json:"nextPageToken"`
}

type googleUser struct {
	ID           string `json:"id"`
	PrimaryEmail string `json:"primaryEmail"`
	Name         struct {
		FullName   string `json:"fullName"`
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Suspended bool `json:"suspended"`
	Archived  bool `json:"archived"`
	Phones    []struct {
		Value   string `json:"value"`
		Type    string `json:"type"`
		Primary bool   `json:"primary"`
	} `json:"phones"`
}

type googleGroup struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type googleMember struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
	Type  string `json:"type"`
}

// user maps a Google user: suspended or archived is disabled; the phone is
// the primary one, else the mobile one, else the first.
func (u googleUser) user() sources.User {
	name := strings.TrimSpace(u.Name.FullName)
	if name == "" {
		name = strings.TrimSpace(u.Name.GivenName + " " + u.Name.FamilyName)
	}
	return sources.User{
		ID:       u.ID,
		Email:    u.PrimaryEmail,
		Name:     name,
		Phone:    u.phone(),
		Disabled: u.Suspended || u.Archived,
	}
}

func (u googleUser) phone() string {
	pick := func(ok func(i int) bool) string {
		for i, p := range u.Phones {
			if v := strings.TrimSpace(p.Value); v != "" && ok(i) {
				return v
			}
		}
		return ""
	}
	if p := pick(func(i int) bool { return u.Phones[i].Primary }); p != "" {
		return p
	}
	if p := pick(func(i int) bool { return strings.EqualFold(u.Phones[i].Type, "mobile") }); p != "" {
		return p
	}
	return pick(func(int) bool { return true })
}

// each reads every page of a list, asking for the next with the same
// request and its pageToken, and hands each page to fn. A failure on any
// page fails the whole read: a partial list would pass for a shorter one.
func (s *Source) each(ctx context.Context, first httpx.Request, fn func(*listPage) error) error {
	last := ""
	return explain(httpx.Pages(ctx, s.api, first, func(p *listPage, _ *httpx.Response) (string, error) {
		if err := fn(p); err != nil {
			return "", err
		}
		switch p.NextPageToken {
		case "":
			return "", nil
		case last:
			return "", fmt.Errorf("google: %s %s: the API gave the same nextPageToken twice", first.Method, first.Route)
		}
		last = p.NextPageToken
		return s.pageURL(first, last), nil
	}))
}

// pageURL is first's URL with pageToken set, as httpx would build it.
func (s *Source) pageURL(first httpx.Request, token string) string {
	u := s.base.JoinPath(first.Path)
	q := url.Values{}
	for k, v := range first.Query {
		q[k] = v
	}
	q.Set("pageToken", token)
	u.RawQuery = q.Encode()
	return u.String()
}

// memberList is one group's members as read, before they join the
// builder.
type memberList struct {
	users   []string       // user ids
	owners  []string       // user ids of OWNER and MANAGER members
	groups  []googleMember // nested groups, to be read in turn
	skipped map[string]int // other members by reason
}

// groupRead is a group whose members are read: one group_query picked, or
// (nesting expanded here) a group nested in one.
type groupRead struct {
	googleGroup
	selected bool
	members  memberList
}

// Fetch reads every user, the queried groups and their members. It
// returns an error and no snapshot when any request fails for good, or a
// group has the whole domain (a CUSTOMER member) in it.
func (s *Source) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	b := sources.NewBuilder(s.name, s.log)
	refs := map[string]sources.UserRef{}
	err := s.each(ctx, s.usersRequest(), func(p *listPage) error {
		for _, u := range p.Users {
			ref, err := b.AddUser(u.user())
			if err != nil {
				return fmt.Errorf("google: %w", err)
			}
			refs[u.ID] = ref
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	var groups []*groupRead
	if err := s.each(ctx, s.groupsRequest(), func(p *listPage) error {
		for _, g := range p.Groups {
			groups = append(groups, &groupRead{googleGroup: g, selected: true})
		}
		return nil
	}); err != nil {
		return nil, err
	}
	selfExpand := s.cfg.Nested && !s.cfg.DerivedMembership
	all, err := s.readMembers(ctx, groups, selfExpand)
	if err != nil {
		return nil, err
	}

	grefs := make(map[string]sources.GroupRef, len(all))
	for _, g := range all {
		name := g.Name
		if s.cfg.NameAttribute == "email" || !g.selected {
			name = g.Email
		}
		grefs[g.ID] = b.AddGroup(sources.Group{ID: g.ID, Name: name, Description: g.Description})
	}
	outside := 0
	for _, g := range all {
		gref := grefs[g.ID]
		for _, id := range g.members.users {
			ref, ok := refs[id]
			if !ok {
				outside++ // outside the domain, or created after users.list was read
				continue
			}
			b.AddMember(gref, ref)
		}
		if s.readOwners && g.selected {
			for _, id := range g.members.owners {
				if ref, ok := refs[id]; ok {
					b.AddOwner(gref, ref)
				}
			}
		}
		if selfExpand {
			for _, m := range g.members.groups {
				if sub, ok := grefs[m.ID]; ok {
					b.AddSubgroup(gref, sub)
				}
			}
		}
		for reason, n := range g.members.skipped {
			b.Skip(reason, n)
		}
	}
	b.Skip(sources.SkipOutsideScope, outside)
	snap := b.Snapshot(selfExpand, sources.DefaultMaxDepth)
	if len(all) > len(groups) {
		// Groups read only for their members are not the query's.
		selected := make(map[string]bool, len(groups))
		for _, g := range groups {
			selected[g.ID] = true
		}
		picked := snap.Groups[:0]
		for _, g := range snap.Groups {
			if selected[g.ID] {
				picked = append(picked, g)
			}
		}
		snap.Groups = picked
	}
	s.log.Debug("google fetch done", zap.Int("users", len(snap.Users)), zap.Int("groups", len(snap.Groups)),
		zap.Int("groups_read", len(all)), zap.Any("skipped", snap.Skipped))
	return snap, nil
}

// readMembers reads the members of groups, concurrently. Expanding nesting
// here, it then reads the groups nested in them, level by level down to
// sources.DefaultMaxDepth, each once: it returns every group read, the
// given ones first.
func (s *Source) readMembers(ctx context.Context, groups []*groupRead, selfExpand bool) ([]*groupRead, error) {
	all := append([]*groupRead(nil), groups...)
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		seen[g.ID] = true
	}
	level := groups
	for depth := 0; len(level) > 0; depth++ {
		eg, egCtx := errgroup.WithContext(ctx)
		eg.SetLimit(s.cfg.Concurrency)
		for _, g := range level {
			eg.Go(func() error {
				var err error
				g.members, err = s.readGroupMembers(egCtx, g)
				return err
			})
		}
		if err := eg.Wait(); err != nil {
			return nil, err
		}
		if !selfExpand {
			break
		}
		var next []*groupRead
		for _, g := range level {
			for _, m := range g.members.groups {
				if seen[m.ID] {
					continue
				}
				seen[m.ID] = true
				if depth == sources.DefaultMaxDepth {
					s.log.Warn("group nesting is deeper than the depth limit; deeper groups not read",
						zap.String("group", m.Email), zap.String("group_id", m.ID), zap.Int("max_depth", sources.DefaultMaxDepth))
					continue
				}
				next = append(next, &groupRead{googleGroup: googleGroup{ID: m.ID, Email: m.Email}})
			}
		}
		all = append(all, next...)
		level = next
	}
	return all, nil
}

// readGroupMembers reads one group's members: users, nested groups (which
// Google expands under derived membership, and which are otherwise kept
// to be read in turn), and, when owners are wanted under derived
// membership, the group's own owners and managers in a request of their
// own. A CUSTOMER member, the whole domain, fails the read.
func (s *Source) readGroupMembers(ctx context.Context, g *groupRead) (memberList, error) {
	derived := s.cfg.Nested && s.cfg.DerivedMembership
	list := memberList{skipped: map[string]int{}}
	q := url.Values{}
	if derived {
		q.Set("includeDerivedMembership", "true")
	}
	err := s.each(ctx, s.membersRequest(g.ID, q), func(p *listPage) error {
		for _, m := range p.Members {
			switch strings.ToUpper(m.Type) {
			case "USER":
				list.users = append(list.users, m.ID)
				if !derived && isOwner(m.Role) {
					list.owners = append(list.owners, m.ID)
				}
			case "GROUP":
				if !derived && s.cfg.Nested {
					list.groups = append(list.groups, m)
				}
			case "CUSTOMER":
				return fmt.Errorf("google: group %s has the whole domain (customer %s) as a member: ptsync does not make a team of every user; remove that member or leave the group out of group_query",
					groupLabel(g), m.ID)
			default:
				list.skipped["member_"+strings.ToLower(m.Type)]++
			}
		}
		return nil
	})
	if err != nil || !derived || !s.readOwners || !g.selected {
		return list, err
	}
	owners := s.membersRequest(g.ID, url.Values{"roles": {"OWNER,MANAGER"}})
	err = s.each(ctx, owners, func(p *listPage) error {
		for _, m := range p.Members {
			if strings.EqualFold(m.Type, "USER") && isOwner(m.Role) {
				list.owners = append(list.owners, m.ID)
			}
		}
		return nil
	})
	return list, err
}

func isOwner(role string) bool {
	return strings.EqualFold(role, "OWNER") || strings.EqualFold(role, "MANAGER")
}

func groupLabel(g *groupRead) string {
	if g.Email != "" {
		return g.Email
	}
	return g.ID
}

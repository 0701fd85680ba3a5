package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

// cloudE2E is one directory API source driven end to end: the fake
// directory → ptsync's commands → the PagerTree emulator.
type cloudE2E struct {
	sourceBlock string // the sources[0] entry of the config, indented
	secret      string // must never be printed
	// leave takes bob out of oncall-db and disables carol, in the fake.
	leave func()
	// breakPageTwo makes every later page of users answer 5xx.
	breakPageTwo func()
}

// runCloudE2E checks: validate --connect; a first sync makes the teams; a
// second makes no write; a directory change is one sync away; a 5xx on a
// later page writes nothing and exits 1. Every request is counted in
// ptsync_source_requests_total.
func runCloudE2E(t *testing.T, name string, c cloudE2E) {
	emu := newAccount(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ptsync.yaml")
	mustWrite(t, cfg, fmt.Sprintf(`pagertree:
  url: %s
  username: admin@example.com
  password: ${TEST_PT_PASSWORD}
sources:
%s
teams:
  - source: %s
    match: "oncall-*"
    name: '{{ trimPrefix "oncall-" .Name }}'
users:
  delete: true
log:
  level: debug
`, emu.URL(), c.sourceBlock, name))
	ptsync := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := runCmd(t, args...)
		if strings.Contains(stdout+stderr, c.secret) {
			t.Errorf("ptsync %s printed the secret", strings.Join(args, " "))
		}
		return code, stdout, stderr
	}
	teams := func() map[string][]string {
		_, teams := viewAccount(t, emu)
		out := map[string][]string{}
		for n, tm := range teams {
			out[n] = tm.Members
		}
		return out
	}

	if code, stdout, stderr := ptsync(t, "validate", "--connect", "--config", cfg); code != 0 || !strings.Contains(stdout, "ok   source "+name) {
		t.Fatalf("validate --connect = %d\n%s%s", code, stdout, stderr)
	}
	metrics := filepath.Join(dir, "metrics.prom")
	if code, _, stderr := ptsync(t, "sync", "--config", cfg, "--metrics-file", metrics); code != 0 {
		t.Fatalf("first sync = %d\n%s", code, stderr)
	}
	want := map[string][]string{
		"db":  {"alice@example.com", "bob@example.com", "carol@example.com"},
		"web": {"bob@example.com"},
	}
	if got := teams(); !reflect.DeepEqual(got, want) {
		t.Fatalf("teams after the first sync:\n%v\nwant\n%v", got, want)
	}
	text, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), fmt.Sprintf(`ptsync_source_requests_total{code="200",source="%s"}`, name)) {
		t.Errorf("the metrics file counts no request of source %s:\n%s", name, text)
	}

	emu.ResetStats()
	if code, _, stderr := ptsync(t, "sync", "--config", cfg); code != 0 {
		t.Fatalf("second sync = %d\n%s", code, stderr)
	}
	if w := emu.Stats().Writes; w != 0 {
		t.Errorf("the second sync made %d writes, want 0", w)
	}

	c.leave()
	if code, _, stderr := ptsync(t, "sync", "--config", cfg); code != 0 {
		t.Fatalf("sync after the change = %d\n%s", code, stderr)
	}
	want = map[string][]string{"db": {"alice@example.com"}, "web": {"bob@example.com"}}
	if got := teams(); !reflect.DeepEqual(got, want) {
		t.Fatalf("teams after bob left db and carol was disabled:\n%v\nwant\n%v", got, want)
	}
	users, _ := viewAccount(t, emu)
	if _, ok := users["carol@example.com"]; ok {
		t.Error("carol, disabled in the directory, is still a PagerTree user")
	}
	if _, ok := users["bob@example.com"]; !ok {
		t.Error("bob, who only left a group, was deleted")
	}

	c.breakPageTwo()
	emu.ResetStats()
	code, _, stderr := ptsync(t, "sync", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "answered 5") {
		t.Errorf("sync with a failing page = %d, want 1 and the failed request\n%s", code, stderr)
	}
	if s := emu.Stats(); s.WriteAttempts != 0 {
		t.Errorf("a failed source still sent %d writes", s.WriteAttempts)
	}
}

// cloudUsers is alice, bob and carol, and 1,200 others so that users take
// more than one page on either API.
func cloudUsers() [][3]string {
	users := [][3]string{{"u-alice", "alice@example.com", "Alice Anders"}, {"u-bob", "bob@example.com", "Bob Brown"}, {"u-carol", "carol@example.com", "Carol Chen"}}
	for i := range 1200 {
		users = append(users, [3]string{fmt.Sprintf("u-%04d", i), fmt.Sprintf("staff%04d@example.com", i), fmt.Sprintf("Staff %d", i)})
	}
	return users
}

func TestGraphEndToEnd(t *testing.T) {
	tenant := graphtest.Tenant{Groups: []graphtest.Group{
		{ID: "g-db", DisplayName: "oncall-db", Members: []string{"u-alice", "u-bob", "g-dba"}},
		{ID: "g-dba", DisplayName: "dba", Members: []string{"u-carol"}},
		{ID: "g-web", DisplayName: "oncall-web", Members: []string{"u-bob"}},
	}}
	for _, u := range cloudUsers() {
		tenant.Users = append(tenant.Users, graphtest.User{ID: u[0], Mail: u[1], DisplayName: u[2], AccountEnabled: true})
	}
	const secret = "graph-client-secret-e2e"
	srv := graphtest.NewServer(tenant, graphtest.Options{ClientID: "app-id", ClientSecret: secret})
	t.Cleanup(srv.Close)
	t.Setenv("TEST_GRAPH_SECRET", secret)
	runCloudE2E(t, "entra", cloudE2E{
		sourceBlock: fmt.Sprintf(`  - name: entra
    type: msgraph
    msgraph:
      tenant_id: %s
      client_id: app-id
      client_secret: ${TEST_GRAPH_SECRET}
      group_filter: "startswith(displayName,'oncall-')"
      base_url: %s
      token_url: %s/{tenant_id}/oauth2/v2.0/token`, srv.TenantID(), srv.BaseURL(), srv.URL()),
		secret: secret,
		leave: func() {
			tenant.Groups[0].Members = []string{"u-alice", "g-dba"}
			for i := range tenant.Users {
				if tenant.Users[i].ID == "u-carol" {
					tenant.Users[i].AccountEnabled = false
				}
			}
			srv.SetTenant(tenant)
		},
		breakPageTwo: func() {
			srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
				if r.URL.Query().Get("$skiptoken") != "" {
					return http.StatusBadGateway, nil, `{"error":{"code":"UnknownError","message":""}}`, true
				}
				return 0, nil, "", false
			})
		},
	})
}

func TestOktaEndToEnd(t *testing.T) {
	org := oktatest.Org{Groups: []oktatest.Group{
		{ID: "g-db", Name: "oncall-db", Members: []string{"u-alice", "u-bob", "u-carol"}},
		{ID: "g-web", Name: "oncall-web", Members: []string{"u-bob"}},
		{ID: "g-all", Name: "Everyone", Members: []string{"u-alice"}},
	}}
	for _, u := range cloudUsers() {
		org.Users = append(org.Users, oktatest.User{ID: u[0], Status: "ACTIVE", Profile: oktatest.Profile{Login: u[1], Email: u[1], DisplayName: u[2]}})
	}
	const token = "00okta-e2e-api-token"
	srv := oktatest.NewServer(org, oktatest.Options{APIToken: token, RateLimit: 600})
	t.Cleanup(srv.Close)
	t.Setenv("TEST_OKTA_TOKEN", token)
	runCloudE2E(t, "okta", cloudE2E{
		sourceBlock: fmt.Sprintf(`  - name: okta
    type: okta
    okta:
      org_url: %s
      api_token: ${TEST_OKTA_TOKEN}
      group_search: 'profile.name sw "oncall-"'`, srv.URL()),
		secret: token,
		leave: func() {
			org.Groups[0].Members = []string{"u-alice", "u-carol"}
			for i := range org.Users {
				if org.Users[i].ID == "u-carol" {
					org.Users[i].Status = "SUSPENDED"
				}
			}
			srv.SetOrg(org)
		},
		breakPageTwo: func() {
			srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
				if r.URL.Query().Get("after") != "" {
					return http.StatusServiceUnavailable, nil, `{"errorCode":"E0000009","errorSummary":"Internal Server Error"}`, true
				}
				return 0, nil, "", false
			})
		},
	})
}

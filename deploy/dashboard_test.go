package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/ptsync/ptsync/internal/testenv"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

const dashboardFile = "grafana/ptsync.json"

// dashboardSubjects are the metrics the dashboard must show, whatever else
// it shows: the panels.
var dashboardSubjects = []string{
	"ptsync_sync_runs_total",
	"ptsync_last_success_timestamp_seconds",
	"ptsync_sync_duration_seconds_bucket",
	"ptsync_changes_total",
	"ptsync_pending_changes",
	"ptsync_source_objects",
	"ptsync_source_skipped_total",
	"ptsync_source_requests_total",
	"ptsync_pagertree_requests_total",
	"ptsync_pagertree_request_duration_seconds_bucket",
	"ptsync_pagertree_retries_total",
	"ptsync_build_info",
	"ptsync_watch_connected",
	"ptsync_watch_events_total",
	"ptsync_propagation_seconds_bucket",
	"process_resident_memory_bytes",
	"go_memstats_heap_inuse_bytes",
}

// The parts of a Grafana dashboard this test reads.
type (
	dashboard struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []variable `json:"list"`
		} `json:"templating"`
	}
	panel struct {
		ID         int         `json:"id"`
		Title      string      `json:"title"`
		Type       string      `json:"type"`
		Datasource *datasource `json:"datasource"`
		Panels     []panel     `json:"panels"` // a row's; Grafana nests them when the row is collapsed
		Targets    []struct {
			RefID      string      `json:"refId"`
			Datasource *datasource `json:"datasource"`
			Expr       string      `json:"expr"`
		} `json:"targets"`
	}
	datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	variable struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      json.RawMessage `json:"query"`
		Definition string          `json:"definition"`
		Datasource *datasource     `json:"datasource"`
		Current    struct {
			Value any `json:"value"`
		} `json:"current"`
	}
)

// promQuery is one PromQL expression of the dashboard and where it is.
type promQuery struct {
	where, expr string
	panel       bool // a panel's, which must filter on the job and instance variables
}

// wantDatasource is what every panel and query variable must query, so
// that the dashboard follows its data source variable after an import.
var wantDatasource = datasource{Type: "prometheus", UID: "${DS_PROMETHEUS}"}

// loadDashboard reads the dashboard and returns its PromQL: every panel
// target's and every query variable's. It fails the test on a panel with
// no target, a target with no expression, or another data source.
func loadDashboard(t *testing.T) (dashboard, []promQuery) {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	// Indent redoes raw's indentation but keeps what follows its end.
	var tidy bytes.Buffer
	if err := json.Indent(&tidy, bytes.TrimSpace(raw), "", "  "); err != nil {
		t.Fatal(err)
	}
	tidy.WriteByte('\n')
	if !bytes.Equal(raw, tidy.Bytes()) {
		t.Errorf("%s is not JSON indented by two spaces with a final newline", dashboardFile)
	}

	var queries []promQuery
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d is used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no target", p.Title)
			}
			if p.Datasource == nil || *p.Datasource != wantDatasource {
				t.Errorf("panel %q: datasource %+v, want %+v", p.Title, p.Datasource, wantDatasource)
			}
			for _, tg := range p.Targets {
				where := fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)
				if tg.Datasource == nil || *tg.Datasource != wantDatasource {
					t.Errorf("%s: datasource %+v, want %+v", where, tg.Datasource, wantDatasource)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s has no expr", where)
					continue
				}
				queries = append(queries, promQuery{where, tg.Expr, true})
			}
		}
	}
	walk(d.Panels)

	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := fmt.Sprintf("variable %s", v.Name)
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("%s: query is not a Prometheus variable query object: %v", where, err)
			continue
		}
		if q.Query != v.Definition {
			t.Errorf("%s: definition %q differs from its query %q", where, v.Definition, q.Query)
		}
		if v.Datasource == nil || *v.Datasource != wantDatasource {
			t.Errorf("%s: datasource %+v, want %+v", where, v.Datasource, wantDatasource)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("%s: query %q is not label_values(selector, label)", where, q.Query)
			continue
		}
		queries = append(queries, promQuery{where, m[1], false})
	}
	return d, queries
}

// labelValues is the variable query form the dashboard uses.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// grafanaVar is a variable reference: $name, ${name} or ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(?:(\w+)|\{(\w+)(?::\w+)?\})`)

// variableValues gives each variable a value Prometheus parses where a
// dashboard may use it. Query and data source variables get their name:
// it is only valid inside a quoted label value, their one place.
func variableValues(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	values := map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "1d"}
	for _, v := range d.Templating.List {
		values[v.Name] = v.Name
		if v.Type == "interval" {
			s, ok := v.Current.Value.(string)
			if !ok {
				t.Errorf("interval variable %s has no current value", v.Name)
			}
			values[v.Name] = s
		}
	}
	return values
}

// dashboardMetrics parses every query of the dashboard, with its variables
// substituted, and returns the metric names they select, each with where
// it is used.
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	d, queries := loadDashboard(t)
	values := variableValues(t, d)
	p := parser.NewParser(parser.Options{})
	used := map[string][]string{}
	for _, q := range queries {
		expr := grafanaVar.ReplaceAllStringFunc(q.expr, func(ref string) string {
			m := grafanaVar.FindStringSubmatch(ref)
			name := m[1] + m[2]
			v, ok := values[name]
			if !ok {
				t.Errorf("%s: unknown variable %s in %q", q.where, ref, q.expr)
			}
			return v
		})
		ast, err := p.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: %q (as %q): %v", q.where, q.expr, expr, err)
			continue
		}
		parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			if q.panel && !filtered(vs, values) {
				t.Errorf("%s: %s does not filter on job=~\"$job\" and instance=~\"$instance\"", q.where, vs)
			}
			for _, m := range vs.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					continue
				}
				if m.Type != labels.MatchEqual {
					t.Errorf("%s: %q selects metrics by %s; name them so this test can check them", q.where, q.expr, m)
					continue
				}
				used[m.Value] = append(used[m.Value], q.where)
			}
			return nil
		})
	}
	return used
}

// filtered reports whether vs keeps to the job and instance chosen on the
// dashboard, so that a panel shows no other job's series.
func filtered(vs *parser.VectorSelector, values map[string]string) bool {
	var job, instance bool
	for _, m := range vs.LabelMatchers {
		switch {
		case m.Type != labels.MatchRegexp:
		case m.Name == model.JobLabel && m.Value == values["job"]:
			job = true
		case m.Name == model.InstanceLabel && m.Value == values["instance"]:
			instance = true
		}
	}
	return job && instance
}

func TestDashboardQueries(t *testing.T) {
	d, _ := loadDashboard(t)
	// Panels name the data source through this variable, so an import
	// works whatever the Prometheus data source's uid.
	if !slices.ContainsFunc(d.Templating.List, func(v variable) bool {
		return v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && string(v.Query) == `"prometheus"`
	}) {
		t.Error("no datasource variable DS_PROMETHEUS of type prometheus")
	}
	used := dashboardMetrics(t)
	for _, name := range dashboardSubjects {
		if len(used[name]) == 0 {
			t.Errorf("no panel of %s queries %s", dashboardFile, name)
		}
	}
}

// TestDashboardMetricsExist runs the real daemon against a PagerTree
// emulator and a Graph fake, and checks the dashboard against its
// /metrics: every metric a query names must be there, and every ptsync_
// metric there must be on the dashboard, so a new metric without a panel
// fails here.
func TestDashboardMetricsExist(t *testing.T) {
	used := dashboardMetrics(t)
	if t.Failed() {
		t.FailNow()
	}
	scraped := scrapeDaemon(t)

	// Histograms are exposed as _bucket, _sum and _count series.
	family := map[string]string{} // series name → family name
	for name, mf := range scraped {
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				family[name+s] = name
			}
		case dto.MetricType_SUMMARY:
			for _, s := range []string{"", "_sum", "_count"} {
				family[name+s] = name
			}
		default:
			family[name] = name
		}
	}
	var missing []string
	shown := map[string]bool{}
	for name, where := range used {
		if f, ok := family[name]; ok {
			shown[f] = true
		} else {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(where, "; ")))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("the dashboard queries metrics ptsync does not expose:\n  %s", strings.Join(missing, "\n  "))
	}
	var unshown []string
	for name := range scraped {
		if strings.HasPrefix(name, "ptsync_") && !shown[name] {
			unshown = append(unshown, name)
		}
	}
	if len(unshown) > 0 {
		slices.Sort(unshown)
		t.Errorf("ptsync exposes metrics no panel of %s shows: %s", dashboardFile, strings.Join(unshown, ", "))
	}
}

// scrapeDaemon runs `ptsync run` until its first sync run has succeeded,
// and returns its /metrics. The run is arranged so that the series that
// only appear after an event do (and a file source has a change feed, for
// the watch mode series): the Graph fake has a user without an
// email (ptsync_source_skipped_total) and fails its first request once
// (ptsync_pagertree_retries_total, which counts the sources' retries too).
func scrapeDaemon(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	bin := ptsyncBinary(t)
	dir := t.TempDir()

	emu := pagertreetest.NewServer(pagertreetest.Options{})
	t.Cleanup(emu.Close)
	const secret = "graph-secret"
	graph := graphtest.NewServer(graphtest.Tenant{
		Users: []graphtest.User{
			{ID: "u-ada", Mail: "ada@example.com", DisplayName: "Ada", AccountEnabled: true},
			{ID: "u-bob", Mail: "bob@example.com", DisplayName: "Bob", AccountEnabled: true},
			{ID: "u-nomail", DisplayName: "No Mail", AccountEnabled: true},
		},
		Groups: []graphtest.Group{{ID: "g-db", DisplayName: "oncall-db", Members: []string{"u-ada", "u-bob", "u-nomail"}}},
	}, graphtest.Options{ClientID: "app-id", ClientSecret: secret})
	t.Cleanup(graph.Close)
	graph.SetFault(func(_ *http.Request, n int) (int, http.Header, string, bool) {
		if n == 1 {
			return http.StatusServiceUnavailable, nil, `{"error":{"code":"ServiceNotAvailable","message":"try again"}}`, true
		}
		return 0, nil, "", false
	})

	// A file source has a change feed: the watch mode series appear.
	contractors := filepath.Join(dir, "contractors.yaml")
	if err := os.WriteFile(contractors, []byte("users:\n  - {id: c-1, email: cy@vendor.example, name: Cy}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ptsync.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `schedule: "@every 24h"
pagertree:
  url: %s
  username: %s
  password: %s
sources:
  - name: entra
    type: msgraph
    msgraph:
      tenant_id: %s
      client_id: app-id
      client_secret: %s
      group_filter: "startswith(displayName,'oncall-')"
      base_url: %s
      token_url: %s/{tenant_id}/oauth2/v2.0/token
  - name: contractors
    type: file
    file: {path: %s}
teams:
  - source: entra
    match: "oncall-*"
metrics:
  listen: 127.0.0.1:0
watch:
  enabled: true
`, emu.URL(), pagertreetest.DefaultUsername, pagertreetest.DefaultPassword,
		graph.TenantID(), secret, graph.BaseURL(), graph.URL(), contractors), 0o600); err != nil {
		t.Fatal(err)
	}

	log := &testenv.Buffer{}
	daemon := exec.Command(bin, "run", "--config", cfg)
	daemon.Stdout, daemon.Stderr = log, log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = daemon.Process.Kill()
			<-exited
		}
	})

	// Patience only catches a hang; nothing here is timed.
	deadline := time.Now().Add(30 * time.Second)
	wait := func(what string, done func() bool) {
		t.Helper()
		for !done() {
			select {
			case err := <-exited:
				stopped = true
				t.Fatalf("ptsync run exited (%v) while waiting for %s; its log:\n%s", err, what, log)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s; ptsync's log:\n%s", what, log)
			}
		}
	}

	var addr string
	wait("the daemon to listen", func() bool {
		addr = startedAddr(log.String())
		return addr != ""
	})
	var families map[string]*dto.MetricFamily
	wait("a first successful sync run", func() bool {
		families = scrape(t, addr)
		if runs(families, "failure") > 0 {
			t.Fatalf("the first sync run failed; ptsync's log:\n%s", log)
		}
		return runs(families, "success") >= 1
	})
	// Scrape once more: the run's last metrics are set just after its count.
	families = scrape(t, addr)

	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("ptsync run after SIGTERM: %v; its log:\n%s", err, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ptsync run did not stop on SIGTERM; its log:\n%s", log)
	}
	return families
}

// startedAddr is the address of the daemon's "daemon started" log line.
func startedAddr(log string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "daemon started" {
			return line.Addr
		}
	}
	return ""
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// runs is ptsync_sync_runs_total{result=result}.
func runs(families map[string]*dto.MetricFamily, result string) float64 {
	for _, m := range families["ptsync_sync_runs_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

package sync

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ptsync/ptsync/sources"
)

// Run results, the values of ptsync_sync_runs_total's result label.
const (
	RunSuccess  = "success"
	RunFailure  = "failure"
	RunWithheld = "withheld"
)

// Metrics is every ptsync_ series of SPEC.md "Observability". It also
// implements pagertree.Observer. A nil *Metrics records nothing, so tests
// and one-shot commands may leave it out.
type Metrics struct {
	runs            *prometheus.CounterVec
	duration        prometheus.Histogram
	lastSuccess     *prometheus.GaugeVec // no labels: absent until a first success, never a misleading 0
	changes         *prometheus.CounterVec
	pending         *prometheus.GaugeVec
	sourceObjects   *prometheus.GaugeVec
	sourceSkipped   *prometheus.CounterVec
	sourceReads     *prometheus.CounterVec
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	sourceRequests  *prometheus.CounterVec
}

// NewMetrics registers ptsync's metrics on reg. The Go and process
// collectors are the caller's to add, as they belong to the process.
func NewMetrics(reg prometheus.Registerer, version string) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_sync_runs_total",
			Help: "Sync runs, by result: success, failure (an error or a failed change) or withheld (destructive changes held back by the safety limits).",
		}, []string{"result"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "ptsync_sync_duration_seconds",
			Help:    "Wall time of a sync run: fetch, plan and apply.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ptsync_last_success_timestamp_seconds",
			Help: "Unix time the last successful (not dry-run) sync run finished; absent until one has.",
		}, nil),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_changes_total",
			Help: "PagerTree changes, by kind, op and result: applied, failed, withheld or cancelled (not tried, or cut off, because the run was cancelled).",
		}, []string{"kind", "op", "result"}),
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ptsync_pending_changes",
			Help: "Changes in the last plan (withheld ones included), by kind and op.",
		}, []string{"kind", "op"}),
		sourceObjects: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ptsync_source_objects",
			Help: "Users and groups the last fetch of each source returned.",
		}, []string{"source", "kind"}),
		sourceSkipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_source_skipped_total",
			Help: "Directory entries a source left out, by reason (no_email, invalid_email, duplicate_email, outside_scope, ...).",
		}, []string{"source", "reason"}),
		sourceReads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_source_reads_total",
			Help: "Reads of each source by sync runs, by how: whole (every object) or refreshed (a watch sync that re-read only the objects the change feed named).",
		}, []string{"source", "read"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_pagertree_requests_total",
			Help: "PagerTree API requests, by method, route template and HTTP status (\"error\" when no response arrived).",
		}, []string{"method", "route", "code"}),
		requestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ptsync_pagertree_request_duration_seconds",
			Help:    "PagerTree API request latency, by method and route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_pagertree_retries_total",
			Help: "HTTP retries, by reason (429, 5xx, transport, 401): PagerTree's and the directory API sources'.",
		}, []string{"reason"}),
		sourceRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_source_requests_total",
			Help: "HTTP requests of the directory API sources (msgraph, okta, google, scim), by source and HTTP status (\"error\" when no response arrived).",
		}, []string{"source", "code"}),
	}
	f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ptsync_build_info",
		Help: "Always 1; the version label is ptsync's version.",
	}, []string{"version"}).WithLabelValues(version).Set(1)

	// Every fixed label combination starts at zero, so rate() and alerts
	// see a series from the first scrape rather than after the first event.
	for _, r := range []string{RunSuccess, RunFailure, RunWithheld} {
		m.runs.WithLabelValues(r)
	}
	for _, k := range []Kind{KindUser, KindTeam} {
		for _, op := range []Op{OpCreate, OpUpdate, OpDelete} {
			m.pending.WithLabelValues(string(k), string(op))
			for _, res := range []Outcome{OutcomeApplied, OutcomeFailed, OutcomeWithheld, OutcomeCancelled} {
				m.changes.WithLabelValues(string(k), string(op), string(res))
			}
		}
	}
	return m
}

// ObserveRequest implements pagertree.Observer.
func (m *Metrics) ObserveRequest(method, route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, route, codeLabel(code)).Inc()
	m.requestDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// ObserveRetry implements pagertree.Observer.
func (m *Metrics) ObserveRetry(reason string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(reason).Inc()
}

// SourceObserver returns the sources.Observer of the named API source: its
// requests count in ptsync_source_requests_total, its retries with
// PagerTree's in ptsync_pagertree_retries_total.
func (m *Metrics) SourceObserver(source string) sources.Observer {
	return sourceObserver{m, source}
}

type sourceObserver struct {
	m      *Metrics
	source string
}

func (o sourceObserver) ObserveRequest(_, _ string, code int, _ time.Duration) {
	if o.m == nil {
		return
	}
	o.m.sourceRequests.WithLabelValues(o.source, codeLabel(code)).Inc()
}

func (o sourceObserver) ObserveRetry(reason string) { o.m.ObserveRetry(reason) }

// codeLabel is an HTTP status as a label value, "error" for no answer.
func codeLabel(code int) string {
	if code == 0 {
		return "error"
	}
	return strconv.Itoa(code)
}

// observeSource records what one read of a source returned, and how it
// read: refreshed, or whole.
func (m *Metrics) observeSource(s *sources.Snapshot, refreshed bool) {
	if m == nil {
		return
	}
	read := "whole"
	if refreshed {
		read = "refreshed"
	}
	m.sourceReads.WithLabelValues(s.Source, read).Inc()
	m.sourceObjects.WithLabelValues(s.Source, "user").Set(float64(len(s.Users)))
	m.sourceObjects.WithLabelValues(s.Source, "group").Set(float64(len(s.Groups)))
	for reason, n := range s.Skipped {
		m.sourceSkipped.WithLabelValues(s.Source, reason).Add(float64(n))
	}
}

// observePending replaces ptsync_pending_changes with the last plan's
// counts, withheld changes included: they are still pending.
func (m *Metrics) observePending(changes ...[]Change) {
	if m == nil {
		return
	}
	m.pending.Reset()
	for _, k := range []Kind{KindUser, KindTeam} {
		for _, op := range []Op{OpCreate, OpUpdate, OpDelete} {
			m.pending.WithLabelValues(string(k), string(op))
		}
	}
	for _, list := range changes {
		for _, c := range list {
			m.pending.WithLabelValues(string(c.Kind), string(c.Op)).Inc()
		}
	}
}

// observeChange counts one change's outcome. Dry-run outcomes are not
// counted: nothing happened to PagerTree.
func (m *Metrics) observeChange(c Change, o Outcome) {
	if m == nil || o == OutcomeDryRun {
		return
	}
	m.changes.WithLabelValues(string(c.Kind), string(c.Op), string(o)).Inc()
}

// observePlanRun records a run that stopped at its plan (Prepare, as
// `ptsync plan` runs it) as the dry run it is: a plan that failed is a
// failed run, and its --metrics-file must say so.
func (m *Metrics) observePlanRun(prep *Prepared, err error, start time.Time) {
	result := RunSuccess
	switch {
	case err != nil:
		result = RunFailure
	case len(prep.Plan.Withheld) > 0:
		result = RunWithheld
	}
	end := time.Now()
	m.observeRun(result, end.Sub(start), end, true)
}

// observeRun records a finished run. Only a successful real run moves the
// last-success timestamp: a dry run proves nothing was applied.
func (m *Metrics) observeRun(result string, d time.Duration, end time.Time, dryRun bool) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
	if result == RunSuccess && !dryRun {
		m.lastSuccess.WithLabelValues().Set(float64(end.UnixNano()) / 1e9)
	}
}

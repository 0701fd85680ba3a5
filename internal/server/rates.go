package server

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The counters the page turns into rates: sync's Metrics.
const (
	requestsMetric = "ptsync_pagertree_requests_total" // labels method, route, code
	retriesMetric  = "ptsync_pagertree_retries_total"  // label reason
)

const (
	// rateWindow is the recent window the page's rates are over.
	rateWindow = 5 * time.Minute
	// sampleEvery is how often Serve samples the counters.
	sampleEvery = 15 * time.Second
)

// counts are the counters at one time, by row of the rates table.
type counts map[string]float64

// sample is the counters at one time.
type sample struct {
	at time.Time
	c  counts
}

// rateSampler keeps the PagerTree request and retry counters of the
// recent past, so that the page can say how fast they grow: now and
// every sampleEvery while the server runs, and whenever the page renders.
type rateSampler struct {
	gatherer prometheus.Gatherer // nil: no rates
	now      func() time.Time

	mu      sync.Mutex
	first   sample   // the first sample: rates since the start
	samples []sample // oldest first; one at least rateWindow old is kept
}

func newRateSampler(g prometheus.Gatherer, now func() time.Time) *rateSampler {
	r := &rateSampler{gatherer: g, now: now}
	r.sample()
	return r
}

// run samples every sampleEvery until ctx ends.
func (r *rateSampler) run(ctx context.Context) {
	if r.gatherer == nil {
		return
	}
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sample()
		}
	}
}

// sample reads the counters now and keeps them.
func (r *rateSampler) sample() sample {
	if r.gatherer == nil {
		return sample{}
	}
	s := sample{at: r.now(), c: r.read()}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first.at.IsZero() {
		r.first = s
	}
	r.samples = append(r.samples, s)
	// Drop what is older than the newest sample at least rateWindow old.
	keep := 0
	for i, old := range r.samples {
		if s.at.Sub(old.at) >= rateWindow {
			keep = i
		}
	}
	r.samples = r.samples[keep:]
	return s
}

// read gathers the two counters into rows: every request, each status
// class (2xx, 4xx, ...), 429 of its own and "no answer"; every retry and
// each reason.
func (r *rateSampler) read() counts {
	c := counts{rowRequests: 0, rowRetries: 0}
	families, _ := r.gatherer.Gather() // a partial gather still has what it has
	for _, mf := range families {
		switch mf.GetName() {
		case requestsMetric:
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue()
				c[rowRequests] += v
				c[requestRow(label(m.GetLabel(), "code"))] += v
			}
		case retriesMetric:
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue()
				c[rowRetries] += v
				c[retryRowPrefix+label(m.GetLabel(), "reason")] += v
			}
		}
	}
	return c
}

// Rows of the rates table.
const (
	rowRequests    = "requests"
	rowRetries     = "retries"
	requestPrefix  = "requests "
	retryRowPrefix = "retries "
)

// requestRow is the row of a request's code label.
func requestRow(code string) string {
	switch {
	case code == "error":
		return requestPrefix + "no answer"
	case code == "429":
		return requestPrefix + "429"
	case len(code) == 3 && code[0] >= '1' && code[0] <= '5':
		return requestPrefix + code[:1] + "xx"
	}
	return requestPrefix + code
}

func label(pairs []*dto.LabelPair, name string) string {
	for _, p := range pairs {
		if p.GetName() == name {
			return p.GetValue()
		}
	}
	return ""
}

// rateRow is one row of the rates table.
type rateRow struct {
	Name string
	// Total is the counter: the count since the process started.
	Total float64
	// Recent is per minute over the recent window, SinceStart per minute
	// since the start.
	Recent, SinceStart float64
	Sub                bool // a breakdown of the row above
}

// rateView is the rates table.
type rateView struct {
	Rows []rateRow
	// Window is the recent window (shorter than rateWindow while the
	// server is younger), Since how long since the first sample.
	Window, Since time.Duration
}

// view samples the counters now and returns the table; nil without a
// gatherer.
func (r *rateSampler) view() *rateView {
	if r.gatherer == nil {
		return nil
	}
	now := r.sample()
	r.mu.Lock()
	first, oldest := r.first, r.samples[0]
	r.mu.Unlock()
	v := &rateView{Window: now.at.Sub(oldest.at), Since: now.at.Sub(first.at)}
	perMinute := func(from sample, name string) float64 {
		d := now.at.Sub(from.at)
		if d <= 0 {
			return 0
		}
		return (now.c[name] - from.c[name]) / d.Minutes()
	}
	add := func(name, title string, sub bool) {
		v.Rows = append(v.Rows, rateRow{Name: title, Total: now.c[name],
			Recent: perMinute(oldest, name), SinceStart: perMinute(first, name), Sub: sub})
	}
	add(rowRequests, "PagerTree requests", false)
	for _, name := range sortedRows(now.c, requestPrefix) {
		add(name, strings.TrimPrefix(name, requestPrefix), true)
	}
	add(rowRetries, "Retries (PagerTree and API sources)", false)
	for _, name := range sortedRows(now.c, retryRowPrefix) {
		add(name, strings.TrimPrefix(name, retryRowPrefix), true)
	}
	return v
}

func sortedRows(c counts, prefix string) []string {
	var out []string
	for name := range c {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

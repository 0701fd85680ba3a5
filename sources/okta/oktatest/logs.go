package oktatest

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The System Log, GET /api/v1/logs, as Okta's System Log API reference and
// its "System Log query" guide describe it.

const (
	logsPath = "/api/v1/logs"
	// logsLimit is limit's default; logsMaxLimit its documented maximum
	// (larger values are capped, as the fake's other lists do).
	logsLimit    = 100
	logsMaxLimit = 1000
	// logRetention: "Log data older than 90 days isn't returned"; queries
	// reaching further back succeed with what is left.
	logRetention = 90 * 24 * time.Hour
	// maxSinceAge: a since further back is refused (400 E0000053).
	maxSinceAge = 180 * 24 * time.Hour
	// defaultSpan: since defaults to 7 days before until.
	defaultSpan = 7 * 24 * time.Hour
)

// A logEvent is one System Log entry. Requests see it from its persistence
// time, Options.LogDelay after it was published.
type logEvent struct {
	seq       int // order of recording, the tie-breaker of equal times
	uuid      string
	published time.Time
	persisted time.Time
	eventType string
	message   string
	targets   []logTarget
}

// logTarget is a LogEvent's actor or one of its targets.
type logTarget struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId"`
	DisplayName string `json:"displayName"`
}

// admin is the actor of every change the fake logs: the API token's or
// the service app's administrator.
var admin = logTarget{ID: "00uFAKEADMIN00000000", Type: "User", AlternateID: "admin@oktatest.invalid", DisplayName: "oktatest admin"}

// logPos is a place in a list of events: after the event at time at with
// sequence seq. Times are persistence times for polling requests and
// published times for bounded ones, whose order runs backwards when desc.
type logPos struct {
	polling, desc bool
	at            time.Time
	seq           int
}

func (p logPos) time(e logEvent) time.Time {
	if p.polling {
		return e.persisted
	}
	return e.published
}

// order compares a and b in p's order.
func (p logPos) order(a, b logEvent) int {
	c := p.time(a).Compare(p.time(b))
	if c == 0 {
		c = cmp.Compare(a.seq, b.seq)
	}
	if p.desc {
		c = -c
	}
	return c
}

// after reports whether e comes after p.
func (p logPos) after(e logEvent) bool {
	return p.order(logEvent{published: p.at, persisted: p.at, seq: p.seq}, e) < 0
}

var logOps = []string{"eq", "ne", "sw", "ew", "co", "gt", "ge", "lt", "le", "pr"}

// logFilter is the filter parameter of GET /api/v1/logs: the fake models
// eventType, target.id, target.type, actor.id and actor.type. Other LogEvent
// properties answer 501; published, which Okta refuses in filters, and
// unknown names are 400.
var logFilter = &schema[logEvent]{
	attrs: map[string]attr[logEvent]{
		"eventType":   {get: func(e logEvent) string { return e.eventType }, ops: logOps},
		"target.id":   {many: targetField(func(t logTarget) string { return t.ID }), ops: logOps},
		"target.type": {many: targetField(func(t logTarget) string { return t.Type }), ops: logOps},
		"actor.id":    {get: func(logEvent) string { return admin.ID }, ops: logOps},
		"actor.type":  {get: func(logEvent) string { return admin.Type }, ops: logOps},
	},
	unimplemented: func(name string) bool {
		first, _, _ := strings.Cut(name, ".")
		return slices.Contains([]string{"uuid", "version", "severity", "legacyEventType", "displayMessage", "actor", "client",
			"device", "outcome", "target", "transaction", "debugContext", "authenticationContext", "securityContext", "request"}, first)
	},
}

func targetField(f func(logTarget) string) func(logEvent) []string {
	return func(e logEvent) []string {
		var out []string
		for _, t := range e.targets {
			out = append(out, f(t))
		}
		return out
	}
}

// record appends e to the System Log, published at now. The caller holds
// s.mu.
func (s *Server) record(e logEvent, now time.Time) {
	s.logSeq++
	e.seq = s.logSeq
	e.uuid = newUUID()
	e.published = now.UTC().Truncate(time.Millisecond)
	e.persisted = e.published.Add(s.opts.LogDelay)
	s.log = append(s.log, e)
}

// newUUID is a random (version 4) UUID, the form of LogEvent uuids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// listLogs serves GET /api/v1/logs.
//
// A polling request (no until, sortOrder ASCENDING) returns the events
// persisted since since, in persistence order, which may differ from
// published order; its next link is always present, and following it later
// returns what was persisted since. Any other request is bounded: the
// events published between since and until (default now), in published
// order, with a next link only while more remain. Events not yet persisted
// are in neither. A next link keeps the request's parameters and adds after,
// which then stands in for since.
func (s *Server) listLogs(w http.ResponseWriter, r *http.Request, now time.Time) {
	q := r.URL.Query()
	if unsupported(w, q, "q") {
		return
	}
	limit, ok := logLimit(w, q)
	if !ok {
		return
	}
	until := now
	if q.Has("until") {
		if until, ok = logTime(w, q, "until"); !ok {
			return
		}
	}
	desc := false
	switch q.Get("sortOrder") {
	case "", "ASCENDING":
	case "DESCENDING":
		desc = true
	default:
		writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: sortOrder",
			"sortOrder: must be ASCENDING or DESCENDING")
		return
	}
	match := func(logEvent) bool { return true }
	if q.Has("filter") {
		m, err := logFilter.compile(q.Get("filter"))
		switch {
		case errors.Is(err, errUnimplemented):
			writeError(w, http.StatusNotImplemented, codeUnsupported, "Unsupported operation.", "filter: "+err.Error())
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, codeInvalidParam, fmt.Sprintf("Invalid filter '%s': %v", q.Get("filter"), err))
			return
		}
		match = m
	}

	lo := until.Add(-defaultSpan)
	if q.Has("since") {
		if lo, ok = logTime(w, q, "since"); !ok {
			return
		}
		if !q.Has("after") && now.Sub(lo) > maxSinceAge {
			writeError(w, http.StatusBadRequest, codeInvalidParam, "Invalid parameter: The since parameter is over 180 days prior to the current day.")
			return
		}
	}
	from := logPos{polling: !q.Has("until") && !desc, desc: desc, at: lo, seq: -1}
	if desc { // a descending list starts at its upper bound
		from.at, from.seq = until, math.MaxInt
	}
	if a := q.Get("after"); a != "" {
		s.mu.Lock()
		pos, known := s.logCursors[a]
		s.mu.Unlock()
		if !known || pos.polling != from.polling || pos.desc != desc {
			writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: after", "after: not a cursor of this query")
			return
		}
		from = pos
	}

	var found []logEvent
	s.mu.Lock()
	for _, e := range s.log {
		visible := !e.persisted.After(now) && !e.published.Before(now.Add(-logRetention))
		inBounds := from.polling || !e.published.Before(lo) && !e.published.After(until)
		if visible && inBounds && from.after(e) && match(e) {
			found = append(found, e)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(found, from.order)
	page := found[:min(limit, len(found))]

	next := from
	if len(page) > 0 {
		last := page[len(page)-1]
		next.at, next.seq = from.time(last), last.seq
	}
	h := w.Header()
	h.Add("Link", "<"+s.base+r.URL.RequestURI()+`>; rel="self"`)
	if from.polling || len(found) > len(page) {
		h.Add("Link", "<"+s.logsNext(q, next)+`>; rel="next"`)
	}
	out := make([]logEventJSON, 0, len(page))
	for _, e := range page {
		out = append(out, eventJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// logLimit reads limit: 0 to 1000, default 100.
func logLimit(w http.ResponseWriter, q url.Values) (int, bool) {
	if !q.Has("limit") {
		return logsLimit, true
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: limit", "limit: must be an integer between 0 and 1000")
		return 0, false
	}
	return min(n, logsMaxLimit), true
}

// logTime reads since or until, RFC 3339 timestamps (the Internet profile
// of ISO 8601), with the error Okta's reference quotes.
func logTime(w http.ResponseWriter, q url.Values, param string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, q.Get(param))
	if err != nil {
		notRecognized := param + ": The date format in your query is not recognized. Please enter dates using ISO8601 string format."
		notValid := param + ": must be a valid date-time or empty."
		writeError(w, http.StatusBadRequest, codeValidation,
			fmt.Sprintf("Api validation failed: '%s': The date format in your query is not recognized. Please enter dates using ISO8601 string format.. '%s': must be a valid date-time or empty.", param, param),
			notRecognized, notValid)
		return time.Time{}, false
	}
	return t, true
}

// logsNext is the next link of a logs request with query q: q with after
// set to a new cursor for pos.
func (s *Server) logsNext(q url.Values, pos logPos) string {
	c := randomID("")
	s.mu.Lock()
	s.logCursors[c] = pos
	s.mu.Unlock()
	next := url.Values{}
	for k, v := range q {
		next[k] = v
	}
	next.Set("after", c)
	return s.base + logsPath + "?" + next.Encode()
}

// logEventJSON is Okta's LogEvent object.
type logEventJSON struct {
	UUID            string      `json:"uuid"`
	Published       string      `json:"published"`
	EventType       string      `json:"eventType"`
	Version         string      `json:"version"`
	Severity        string      `json:"severity"`
	LegacyEventType *string     `json:"legacyEventType"`
	DisplayMessage  string      `json:"displayMessage"`
	Actor           logTarget   `json:"actor"`
	Client          logClient   `json:"client"`
	Outcome         logOutcome  `json:"outcome"`
	Target          []logTarget `json:"target"`
}

type logClient struct {
	UserAgent struct {
		RawUserAgent string `json:"rawUserAgent"`
		OS           string `json:"os"`
		Browser      string `json:"browser"`
	} `json:"userAgent"`
	Zone      string `json:"zone"`
	IPAddress string `json:"ipAddress"`
}

type logOutcome struct {
	Result string  `json:"result"`
	Reason *string `json:"reason"`
}

func eventJSON(e logEvent) logEventJSON {
	j := logEventJSON{
		UUID:           e.uuid,
		Published:      e.published.Format("2006-01-02T15:04:05.000Z"),
		EventType:      e.eventType,
		Version:        "0",
		Severity:       "INFO",
		DisplayMessage: e.message,
		Actor:          admin,
		Outcome:        logOutcome{Result: "SUCCESS"},
		Target:         e.targets,
	}
	j.Client.UserAgent.RawUserAgent, j.Client.UserAgent.OS, j.Client.UserAgent.Browser = "oktatest", "Unknown", "UNKNOWN"
	j.Client.Zone, j.Client.IPAddress = "null", "127.0.0.1"
	return j
}

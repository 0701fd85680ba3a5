package ldap

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
)

// fakeAD is a go-ldap Client that answers searches the way an Active
// Directory DC does where Samba does not: a multi-valued attribute with more
// than maxValRange values is never returned whole (MS-ADTS 3.1.1.3.1.3.3,
// MaxValRange policy of 3.1.1.3.4.6, 1500 by default).
//
//   - A plain request for such an attribute is answered with its first
//     maxValRange values under "member;range=0-1499".
//   - A request for "member;range=low-high" (high may be "*") returns at most
//     maxValRange values from index low, named with the range actually
//     returned; high is "*" when the last value is included.
//
// It also pages (RFC 2696, capped at AD's MaxPageSize) and evaluates the
// filters the source sends in AD mode: &, equality and presence. Anything
// else is refused, so a change in the source's requests fails loudly rather
// than being answered wrongly. Methods the source does not call are left to
// the embedded nil Client and panic if called.
type fakeAD struct {
	goldap.Client

	// mu guards searches and closed: a fetch searches on two connections
	// at once, and both are this fake.
	mu          sync.Mutex
	maxValRange int
	maxPageSize int
	entries     []*fakeEntry

	// searches records each request's base and attribute list, in order.
	searches []fakeSearch
	closed   bool
}

type fakeSearch struct {
	base  string
	attrs []string
}

type fakeEntry struct {
	dn    string
	attrs map[string][][]byte // lower-cased name -> values
	names map[string]string   // lower-cased name -> name as stored
}

func newFakeAD(maxValRange int) *fakeAD {
	return &fakeAD{maxValRange: maxValRange, maxPageSize: 1000}
}

func (f *fakeAD) add(dn string, attrs map[string][]string, guid []byte) {
	e := &fakeEntry{dn: dn, attrs: map[string][][]byte{}, names: map[string]string{}}
	for name, vals := range attrs {
		for _, v := range vals {
			e.attrs[strings.ToLower(name)] = append(e.attrs[strings.ToLower(name)], []byte(v))
		}
		e.names[strings.ToLower(name)] = name
	}
	e.attrs["objectguid"], e.names["objectguid"] = [][]byte{guid}, "objectGUID"
	f.entries = append(f.entries, e)
}

func (f *fakeAD) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeAD) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	f.mu.Lock()
	f.searches = append(f.searches, fakeSearch{base: req.BaseDN, attrs: slices.Clone(req.Attributes)})
	f.mu.Unlock()
	filter, err := goldap.CompileFilter(req.Filter)
	if err != nil {
		return nil, goldap.NewError(goldap.LDAPResultFilterError, err)
	}
	paging, _ := goldap.FindControl(req.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
	var matched []*goldap.Entry
	for _, e := range f.entries {
		if !inScope(e.dn, req.BaseDN, req.Scope) {
			continue
		}
		ok, err := e.matches(filter)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		out, err := f.project(e, req.Attributes)
		if err != nil {
			return nil, err
		}
		matched = append(matched, out)
	}
	if paging == nil {
		if len(matched) > f.maxPageSize {
			return nil, goldap.NewError(goldap.LDAPResultSizeLimitExceeded, fmt.Errorf("fake AD: %d entries, MaxPageSize %d", len(matched), f.maxPageSize))
		}
		return &goldap.SearchResult{Entries: matched}, nil
	}
	return f.page(matched, paging)
}

// page serves one page; the cookie is the index of the next entry.
func (f *fakeAD) page(matched []*goldap.Entry, paging *goldap.ControlPaging) (*goldap.SearchResult, error) {
	start := 0
	if len(paging.Cookie) > 0 {
		n, err := strconv.Atoi(string(paging.Cookie))
		if err != nil || n > len(matched) {
			return nil, goldap.NewError(goldap.LDAPResultUnwillingToPerform, fmt.Errorf("fake AD: bad paging cookie %q", paging.Cookie))
		}
		start = n
	}
	resp := goldap.NewControlPaging(0)
	if paging.PagingSize == 0 { // the client abandons the search
		return &goldap.SearchResult{Controls: []goldap.Control{resp}}, nil
	}
	size := min(int(paging.PagingSize), f.maxPageSize)
	end := min(start+size, len(matched))
	if end < len(matched) {
		resp.SetCookie([]byte(strconv.Itoa(end)))
	}
	return &goldap.SearchResult{Entries: matched[start:end], Controls: []goldap.Control{resp}}, nil
}

func inScope(dn, base string, scope int) bool {
	dn, base = strings.ToLower(dn), strings.ToLower(base)
	switch scope {
	case goldap.ScopeBaseObject:
		return dn == base
	case goldap.ScopeSingleLevel:
		_, parent, _ := strings.Cut(dn, ",")
		return parent == base
	}
	return dn == base || strings.HasSuffix(dn, ","+base)
}

func (e *fakeEntry) matches(p *ber.Packet) (bool, error) {
	switch p.Tag {
	case goldap.FilterAnd:
		for _, c := range p.Children {
			ok, err := e.matches(c)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case goldap.FilterPresent:
		return len(e.attrs[strings.ToLower(ber.DecodeString(p.Data.Bytes()))]) > 0, nil
	case goldap.FilterEqualityMatch:
		name := strings.ToLower(ber.DecodeString(p.Children[0].Data.Bytes()))
		want := ber.DecodeString(p.Children[1].Data.Bytes())
		for _, v := range e.attrs[name] {
			if strings.EqualFold(string(v), want) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, goldap.NewError(goldap.LDAPResultUnwillingToPerform, fmt.Errorf("fake AD: filter %s is not supported", goldap.FilterMap[uint64(p.Tag)]))
}

// project builds the returned entry: the requested attributes, multi-valued
// ones cut to ranges as AD does.
func (f *fakeAD) project(e *fakeEntry, requested []string) (*goldap.Entry, error) {
	out := &goldap.Entry{DN: e.dn}
	if len(requested) == 0 || slices.Contains(requested, "*") {
		requested = nil
		for lower := range e.attrs {
			requested = append(requested, e.names[lower])
		}
		slices.Sort(requested)
	}
	for _, desc := range requested {
		name, opts, _ := strings.Cut(desc, ";")
		vals := e.attrs[strings.ToLower(name)]
		if len(vals) == 0 {
			continue
		}
		stored := e.names[strings.ToLower(name)]
		spec, ranged := strings.CutPrefix(strings.ToLower(opts), "range=")
		if !ranged {
			if len(vals) <= f.maxValRange {
				out.Attributes = append(out.Attributes, attribute(stored, vals))
				continue
			}
			spec = "0-*" // more than MaxValRange values: served as a range
		}
		low, high, err := parseRequestedRange(spec, len(vals))
		if err != nil {
			return nil, goldap.NewError(goldap.LDAPResultOperationsError, fmt.Errorf("fake AD: %s: %w", desc, err))
		}
		last := min(high, low+f.maxValRange-1, len(vals)-1)
		end := strconv.Itoa(last)
		if last == len(vals)-1 {
			end = "*"
		}
		out.Attributes = append(out.Attributes, attribute(fmt.Sprintf("%s;range=%d-%s", stored, low, end), vals[low:last+1]))
	}
	return out, nil
}

// parseRequestedRange reads "low-high" or "low-*". A low past the last
// value is refused: a client that stops at the "*" marker never sends one.
func parseRequestedRange(spec string, count int) (low, high int, err error) {
	lo, hi, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, fmt.Errorf("malformed range %q", spec)
	}
	if low, err = strconv.Atoi(lo); err != nil || low < 0 {
		return 0, 0, fmt.Errorf("malformed range %q", spec)
	}
	high = count - 1
	if hi != "*" {
		if high, err = strconv.Atoi(hi); err != nil || high < low {
			return 0, 0, fmt.Errorf("malformed range %q", spec)
		}
	}
	if low >= count {
		return 0, 0, fmt.Errorf("range starts at %d but there are %d values", low, count)
	}
	return low, high, nil
}

func attribute(name string, vals [][]byte) *goldap.EntryAttribute {
	a := &goldap.EntryAttribute{Name: name, ByteValues: vals}
	for _, v := range vals {
		a.Values = append(a.Values, string(v))
	}
	return a
}

// guidBytes lays out a GUID string the way AD stores objectGUID (MS-DTYP
// 2.3.4.2): Data1, Data2 and Data3 little-endian, Data4 as the bytes appear.
// It goes from text to bytes so that it checks, rather than repeats, the
// source's bytes-to-text rendering.
func guidBytes(t testing.TB, guid string) []byte {
	t.Helper()
	parts := strings.Split(guid, "-")
	if len(parts) != 5 {
		t.Fatalf("malformed GUID %q", guid)
	}
	raw := make([][]byte, 5)
	for i, p := range parts {
		b, err := hex.DecodeString(p)
		if err != nil {
			t.Fatalf("malformed GUID %q: %v", guid, err)
		}
		raw[i] = b
	}
	out := binary.LittleEndian.AppendUint32(nil, binary.BigEndian.Uint32(raw[0]))
	out = binary.LittleEndian.AppendUint16(out, binary.BigEndian.Uint16(raw[1]))
	out = binary.LittleEndian.AppendUint16(out, binary.BigEndian.Uint16(raw[2]))
	return append(append(out, raw[3]...), raw[4]...)
}

const fakeBase = "DC=corp,DC=example"

// fakeDirectory is an AD with users people users and one group, oncall,
// whose members are the first members of them.
func fakeDirectory(t testing.TB, maxValRange, people, members int) (*fakeAD, []string) {
	t.Helper()
	f := newFakeAD(maxValRange)
	ids := make([]string, people)
	dns := make([]string, people)
	for i := range people {
		ids[i] = fmt.Sprintf("%08x-%04x-4abc-8def-%012x", 0x10000000+i, i, i*7)
		dns[i] = fmt.Sprintf("CN=User %05d,OU=People,%s", i, fakeBase)
		f.add(dns[i], map[string][]string{
			"objectClass":        {"top", "person", "organizationalPerson", "user"},
			"objectCategory":     {"person"}, // AD expands the short name to the schema DN; equality on "person" is what matters here
			"sAMAccountName":     {fmt.Sprintf("user%05d", i)},
			"mail":               {fmt.Sprintf("user%05d@corp.example", i)},
			"displayName":        {fmt.Sprintf("User %05d", i)},
			"userAccountControl": {"512"},
		}, guidBytes(t, ids[i]))
	}
	f.add("CN=oncall,OU=Groups,"+fakeBase, map[string][]string{
		"objectClass": {"top", "group"},
		"cn":          {"oncall"},
		"member":      dns[:members],
	}, guidBytes(t, "0a0b0c0d-1e1f-2a2b-3c3d-4e4f5a5b5c5d"))
	return f, ids[:members]
}

func fakeSource(t testing.TB, f *fakeAD, edits ...func(*Config)) *Source {
	t.Helper()
	cfg := testConfig("ldap://dc.corp.example", "OU=People,"+fakeBase, "OU=Groups,"+fakeBase)
	cfg.ActiveDirectory, cfg.PageSize, cfg.Groups.Nested = true, 1000, false
	for _, edit := range edits {
		edit(cfg)
	}
	s, err := newSource("ad", cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	s.dial = func(context.Context) (goldap.Client, error) { return f, nil }
	return s
}

// rangeRequests lists the ranged attributes the source asked for.
func (f *fakeAD) rangeRequests() []string {
	var out []string
	for _, s := range f.searches {
		for _, a := range s.attrs {
			if strings.Contains(strings.ToLower(a), ";range=") {
				out = append(out, s.base+" "+a)
			}
		}
	}
	return out
}

func TestRangeRetrievalReadsWholeGroups(t *testing.T) {
	const maxValRange = 1500
	group := "CN=oncall,OU=Groups," + fakeBase
	tests := []struct {
		name    string
		members int
		// wantRanges are the follow-up requests a client must make after
		// the group search answered "member;range=0-1499".
		wantRanges []string
	}{
		{name: "empty group", members: 0},
		{name: "one member", members: 1},
		{name: "exactly MaxValRange members, returned whole", members: 1500},
		{name: "one past MaxValRange", members: 1501, wantRanges: []string{group + " member;range=1500-*"}},
		{name: "several ranges", members: 4000, wantRanges: []string{group + " member;range=1500-*", group + " member;range=3000-*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, want := fakeDirectory(t, maxValRange, 4000, tt.members)
			snap, err := fakeSource(t, f).Fetch(context.Background())
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if len(snap.Users) != 4000 {
				t.Errorf("got %d users, want 4000", len(snap.Users))
			}
			if len(snap.Groups) != 1 {
				t.Fatalf("got %d groups, want 1", len(snap.Groups))
			}
			g := snap.Groups[0]
			if g.ID != "0a0b0c0d-1e1f-2a2b-3c3d-4e4f5a5b5c5d" || g.Name != "oncall" {
				t.Errorf("group = %q %q, want oncall with id 0a0b0c0d-1e1f-2a2b-3c3d-4e4f5a5b5c5d", g.ID, g.Name)
			}
			got := slices.Sorted(slices.Values(g.Members))
			if !slices.Equal(got, want) {
				t.Errorf("got %d members, want %d (first missing: %q)", len(got), len(want), firstMissing(want, got))
			}
			if got := f.rangeRequests(); !slices.Equal(got, tt.wantRanges) {
				t.Errorf("range requests:\n got %q\nwant %q", got, tt.wantRanges)
			}
			if !f.closed {
				t.Error("the connection was not closed")
			}
		})
	}
}

func firstMissing(want, got []string) string {
	for _, w := range want {
		if _, found := slices.BinarySearch(got, w); !found {
			return w
		}
	}
	return ""
}

// TestRangeFakeFollowsMSADTS pins the fake to the rules of MS-ADTS
// 3.1.1.3.1.3.3, so that the source is tested against AD's behaviour and not
// against the fake's mistakes. ad_test.go sends the same requests to Samba.
func TestRangeFakeFollowsMSADTS(t *testing.T) {
	for _, tt := range rangeCases {
		t.Run(fmt.Sprintf("%d members %s", tt.members, tt.request), func(t *testing.T) {
			f, _ := fakeDirectory(t, 1500, tt.members, tt.members)
			want := tt.want
			if tt.capped != nil {
				want = *tt.capped
			}
			got, err := readRange(f, "CN=oncall,OU=Groups,"+fakeBase, tt.request)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// rangeAnswer is the attribute a server returns for a range request: its
// name, with the range actually served, and how many values it holds.
type rangeAnswer struct {
	name  string
	count int
}

// rangeCases are explicit range requests on a group of members members.
// want is the answer of a server with no cap on values (Samba) and of AD
// when its cap is not reached; capped is AD's answer, MaxValRange 1500,
// where that differs.
var rangeCases = []struct {
	members int
	request string
	want    rangeAnswer
	capped  *rangeAnswer
}{
	{members: 3000, request: "member;range=99-499", want: rangeAnswer{"member;range=99-499", 401}},
	{members: 3000, request: "member;range=0-*", want: rangeAnswer{"member;range=0-*", 3000}, capped: &rangeAnswer{"member;range=0-1499", 1500}},
	{members: 3000, request: "member;range=1500-*", want: rangeAnswer{"member;range=1500-*", 1500}},
	{members: 3000, request: "member;range=1000-*", want: rangeAnswer{"member;range=1000-*", 2000}, capped: &rangeAnswer{"member;range=1000-2499", 1500}},
	{members: 3000, request: "member;range=2990-*", want: rangeAnswer{"member;range=2990-*", 10}},
	{members: 3000, request: "member;range=2000-3500", want: rangeAnswer{"member;range=2000-*", 1000}},
	{members: 3000, request: "member;range=2999-2999", want: rangeAnswer{"member;range=2999-*", 1}},
	{members: 3000, request: "member", want: rangeAnswer{"member", 3000}, capped: &rangeAnswer{"member;range=0-1499", 1500}},
	{members: 1500, request: "member", want: rangeAnswer{"member", 1500}},
}

// readRange reads one attribute of dn and returns what the server
// answered.
func readRange(conn goldap.Client, dn, attr string) (rangeAnswer, error) {
	res, err := conn.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil {
		return rangeAnswer{}, fmt.Errorf("read %s of %s: %w", attr, dn, err)
	}
	if len(res.Entries) != 1 || len(res.Entries[0].Attributes) != 1 {
		return rangeAnswer{}, fmt.Errorf("read %s of %s: want one entry with one attribute, got %d entries", attr, dn, len(res.Entries))
	}
	a := res.Entries[0].Attributes[0]
	return rangeAnswer{a.Name, len(a.Values)}, nil
}

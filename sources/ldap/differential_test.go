package ldap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
)

var captureCorpus = flag.Bool("capture-corpus", false,
	"write the slapd answers TestDifferentialSlapd captures, and the hostile seeds, into testdata/fuzz")

// tapConn records every byte the server sends.
type tapConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// capture is one search against the capture slapd and what must come of it.
type capture struct {
	name       string
	req        *goldap.SearchRequest
	entries    int
	referrals  int
	controls   int
	resultCode uint16 // 0: success
}

// jpegBytes is a value holding every byte, which no string attribute would.
var jpegBytes = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

var longDescription = strings.Repeat("on-call rota ", 6000) // over 64 KiB: four-octet lengths

// captureLDIF is membershipLDIF plus a user with a binary photo and a
// group with a long description.
var captureLDIF = membershipLDIF + `dn: uid=pic,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: pic
cn: Pic
sn: P
mail: pic@example.com
jpegPhoto:: ` + base64.StdEncoding.EncodeToString(jpegBytes) + `

dn: cn=long,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: long
description: ` + longDescription + `
member: uid=pic,ou=people,dc=example,dc=com

`

// TestDifferentialSlapd captures real slapd answers to the searches a
// fetch makes (and a few it meets: an error, a size limit, a reference,
// a binary value, a value over 64 KiB) and decodes each with wireConn and
// with go-ldap: both must succeed, or fail with the same result code, and
// agree on every entry, reference and control. The fuzz targets run the
// same comparison (diffSearch) over their seed corpora; with
// -capture-corpus this test writes the captures into those corpora.
func TestDifferentialSlapd(t *testing.T) {
	// Anonymous reads: the search is then the first request, message 1,
	// as in the replays.
	srv := slapd.Start(t, slapd.Options{LDIF: captureLDIF, Access: []string{"access to * by * read"}})
	srv.AddReferral(t, "ou=east,"+slapd.PeopleDN, "ldap://east.example:389/ou=east,"+slapd.PeopleDN)
	paged := func(n uint32) []goldap.Control { return []goldap.Control{goldap.NewControlPaging(n)} }
	search := func(base string, scope int, filter string, attrs []string, controls []goldap.Control) *goldap.SearchRequest {
		return goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, controls)
	}
	captures := []capture{
		{name: "users-page", req: search(slapd.PeopleDN, goldap.ScopeWholeSubtree, "(objectClass=inetOrgPerson)",
			[]string{"entryUUID", "mail", "displayName", "telephoneNumber", "uid"}, paged(3)), entries: 3, controls: 1},
		{name: "users-all-attributes", req: search(slapd.PeopleDN, goldap.ScopeSingleLevel, "(uid=a*)", []string{"*", "+"}, paged(100)), entries: 2, referrals: 1, controls: 1},
		{name: "groups", req: search(slapd.GroupsDN, goldap.ScopeWholeSubtree, "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
			[]string{"entryUUID", "cn", "description", "member", "uniqueMember", "memberUid"}, paged(100)), entries: 6, controls: 1},
		{name: "binary-value", req: search("uid=pic,"+slapd.PeopleDN, goldap.ScopeBaseObject, "(objectClass=*)", []string{"jpegPhoto"}, nil), entries: 1},
		{name: "types-only", req: goldap.NewSearchRequest(slapd.PeopleDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, true,
			"(uid=bob)", []string{"mail", "cn"}, nil), entries: 1, referrals: 1},
		{name: "no-such-object", req: search("ou=nowhere,"+slapd.Suffix, goldap.ScopeWholeSubtree, "(objectClass=*)", nil, nil), resultCode: goldap.LDAPResultNoSuchObject},
		{name: "size-limit", req: goldap.NewSearchRequest(slapd.PeopleDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false,
			"(objectClass=inetOrgPerson)", []string{"1.1"}, nil), entries: 2, resultCode: goldap.LDAPResultSizeLimitExceeded},
		{name: "reference-only", req: search(slapd.PeopleDN, goldap.ScopeWholeSubtree, "(uid=nobody)", []string{"mail"}, paged(10)), referrals: 1, controls: 1},
	}
	for _, c := range captures {
		t.Run(c.name, func(t *testing.T) {
			stream := captureAnswer(t, srv, c.req)
			ours, theirs := diffSearch(t, stream)
			for _, err := range []error{ours, theirs} {
				if c.resultCode == 0 && err != nil || c.resultCode != 0 && !goldap.IsErrorWithCode(err, c.resultCode) {
					t.Fatalf("wireConn: %v; go-ldap: %v; want result code %d from both", ours, theirs, c.resultCode)
				}
			}
			res, _ := searchOurs(stream)
			if len(res.Entries) != c.entries || len(res.Referrals) != c.referrals || len(res.Controls) != c.controls {
				t.Errorf("decoded %d entries, %d references, %d controls; want %d, %d, %d",
					len(res.Entries), len(res.Referrals), len(res.Controls), c.entries, c.referrals, c.controls)
			}
			if *captureCorpus {
				writeCaptureSeeds(t, c.name, stream)
			}
		})
	}
	if *captureCorpus {
		for name, stream := range hostileStreams {
			writeSeed(t, "FuzzReceive", name, stream)
			writeSeed(t, "FuzzReadMessage", name, stream)
		}
		for name, body := range hostileResults {
			writeSeed(t, "FuzzResultError", name, body)
		}
		for name, body := range hostileControls {
			writeSeed(t, "FuzzDecodeControls", name, body)
		}
		for name, body := range hostileEntries {
			writeSeed(t, "FuzzDecodeEntry", name, body)
		}
	}
}

// captureAnswer sends req to srv on a fresh anonymous connection and
// returns every byte srv sent back.
func captureAnswer(t *testing.T, srv *slapd.Server, req *goldap.SearchRequest) []byte {
	t.Helper()
	raw, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "ldap://"))
	if err != nil {
		t.Fatal(err)
	}
	tap := &tapConn{Conn: raw}
	c := newWireConn(tap, time.Minute)
	_, err = c.Search(req)
	var le *goldap.Error
	if err != nil && (!errors.As(err, &le) || le.ResultCode >= goldap.ErrorNetwork) {
		t.Fatalf("search: %v", err)
	}
	raw.Close()
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return bytes.Clone(tap.got.Bytes())
}

// writeCaptureSeeds writes a captured stream into the corpora: whole, and
// split into the message parts the decoders read.
func writeCaptureSeeds(t *testing.T, name string, stream []byte) {
	t.Helper()
	writeSeed(t, "FuzzReceive", "slapd-"+name, stream)
	writeSeed(t, "FuzzReadMessage", "slapd-"+name, stream)
	c := newWireConn(newStreamConn(stream, false), 0)
	entries := 0
	for {
		tag, body, controls, err := c.receive(1)
		if err != nil {
			return
		}
		switch tag {
		case tagSearchEntry:
			if entries < 3 {
				writeSeed(t, "FuzzDecodeEntry", fmt.Sprintf("slapd-%s-%d", name, entries), body)
			}
			entries++
		case tagSearchDone:
			writeSeed(t, "FuzzResultError", "slapd-"+name, body)
			if controls != nil {
				writeSeed(t, "FuzzDecodeControls", "slapd-"+name, controls)
			}
		}
	}
}

// writeSeed writes one input in go test's corpus format.
func writeSeed(t *testing.T, target, name string, data []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Hand-made hostile inputs for the corpora (written with -capture-corpus).
var (
	hostileStreams = map[string][]byte{
		"declares-1GiB":          {0x30, 0x84, 0x40, 0x00, 0x00, 0x00, 0x02, 0x01},
		"declares-over-the-cap":  {0x30, 0x84, 0x04, 0x00, 0x00, 0x01, 0x02, 0x01, 0x01},
		"indefinite-length":      {0x30, 0x80, 0x02, 0x01, 0x01, 0x65, 0x80, 0x00, 0x00, 0x00, 0x00},
		"length-of-9-octets":     {0x30, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x02, 0x01, 0x01},
		"length-0xff":            {0x30, 0xff, 0x02, 0x01, 0x01},
		"length-8-octets-padded": slices.Concat([]byte{0x30, 0x88, 0, 0, 0, 0, 0, 0, 0, 12}, tlv(berInteger, []byte{1}), tlv(tagSearchDone, successResult)),
		"not-a-sequence":         {0x31, 0x03, 0x02, 0x01, 0x01},
		"truncated":              searchDone(successResult)[:7],
		"wrong-message-id":       tlv(berSequence, tlv(berInteger, []byte{2}), tlv(tagSearchDone, successResult)),
		"message-id-9-octets":    tlv(berSequence, tlv(berInteger, []byte{0, 0, 0, 0, 0, 0, 0, 0, 1}), tlv(tagSearchDone, successResult)),
		"multi-octet-tag":        tlv(berSequence, tlv(berInteger, []byte{1}), append([]byte{0x7f, 0x05}, tlv(0x07, successResult)[1:]...)),
		"notice-of-disconnection": tlv(berSequence, tlv(berInteger, []byte{0}),
			tlv(tagExtendedResponse, []byte{berEnumerated, 1, 52}, tlv(berOctetString), tlv(berOctetString, []byte("shutting down")),
				tlv(0x8a, []byte("1.3.6.1.4.1.1466.20036")))),
		"reference-with-two-uris": append(message1(tlv(tagSearchReference, tlv(berOctetString, []byte("ldap://a.example/dc=a")), tlv(berOctetString, []byte("ldap://b.example/dc=a")))),
			searchDone(successResult)...),
		"empty-reference": append(message1(tlv(tagSearchReference)), searchDone(successResult)...),
		"intermediate-then-done": append(message1(tlv(0x60|goldap.ApplicationIntermediateResponse, tlv(0x80, []byte("1.2.3")))),
			searchDone(successResult)...),
		"done-with-referral-field": searchDone(append(bytes.Clone([]byte{berEnumerated, 1, 10, berOctetString, 0, berOctetString, 0}),
			tlv(0xa3, tlv(berOctetString, []byte("ldap://elsewhere.example/dc=x")))...)),
		"bind-response-instead": message1(tlv(tagBindResponse, successResult)),
	}
	hostileResults = map[string][]byte{
		"code-out-of-range":     {berEnumerated, 3, 0x01, 0x00, 0x00, berOctetString, 0, berOctetString, 0},
		"negative-code":         {berEnumerated, 1, 0xff, berOctetString, 0, berOctetString, 0},
		"code-as-integer":       {berInteger, 1, 32, berOctetString, 0, berOctetString, 0},
		"no-diagnostic":         {berEnumerated, 1, 32, berOctetString, 0},
		"code-of-9-octets":      {berEnumerated, 9, 0, 0, 0, 0, 0, 0, 0, 0, 32, berOctetString, 0, berOctetString, 0},
		"matched-and-message":   append([]byte{berEnumerated, 1, 32}, append(tlv(berOctetString, []byte("dc=x")), tlv(berOctetString, []byte("no such object"))...)...),
		"diagnostic-not-string": {berEnumerated, 1, 1, berOctetString, 0, berInteger, 1, 5},
	}
	hostileControls = map[string][]byte{
		"paging-with-cookie": tlv(berSequence, tlv(berOctetString, []byte(goldap.ControlTypePaging)),
			tlv(berOctetString, tlv(berSequence, tlv(berInteger, []byte{0}), tlv(berOctetString, []byte("cookie"))))),
		"paging-value-garbage": tlv(berSequence, tlv(berOctetString, []byte(goldap.ControlTypePaging)), tlv(berOctetString, []byte{0x30, 0x84, 0xff})),
		"unknown-critical":     tlv(berSequence, tlv(berOctetString, []byte("1.2.3.4")), []byte{0x01, 0x01, 0xff}, tlv(berOctetString, []byte("v"))),
		"four-children":        tlv(berSequence, tlv(berOctetString, []byte("1.2.3.4")), []byte{0x01, 0x01, 0x00}, tlv(berOctetString), tlv(berOctetString)),
		"not-a-sequence":       tlv(berOctetString, []byte("1.2.3.4")),
	}
	hostileEntries = map[string][]byte{
		"attribute-list-declares-4GiB": {0x04, 0x00, 0x30, 0x84, 0xff, 0xff, 0xff, 0xff},
		"value-not-octet-string":       append(tlv(berOctetString, []byte("cn=a")), tlv(berSequence, tlv(berSequence, tlv(berOctetString, []byte("cn")), tlv(berSet, tlv(0x0c, []byte("a")))))...),
		"no-attribute-list":            tlv(berOctetString, []byte("cn=a")),
		"empty-value-set":              append(tlv(berOctetString, []byte("cn=a")), tlv(berSequence, tlv(berSequence, tlv(berOctetString, []byte("cn")), tlv(berSet)))...),
		"attribute-without-values":     append(tlv(berOctetString, []byte("cn=a")), tlv(berSequence, tlv(berSequence, tlv(berOctetString, []byte("cn"))))...),
		"trailing-element":             append(append(tlv(berOctetString, []byte("cn=a")), tlv(berSequence)...), tlv(berOctetString, []byte("x"))...),
	}
)

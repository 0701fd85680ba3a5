package ldap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/sources"
)

// encodeEntry builds a SearchResultEntry protocolOp as a server sends it.
func encodeEntry(dn string, attrs []*goldap.EntryAttribute) []byte {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchResultEntry, nil, "entry")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "dn"))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	for _, a := range attrs {
		one := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
		one.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.Name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		for _, v := range a.ByteValues {
			val := ber.Encode(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, nil, "val")
			val.Value = v
			val.Data.Write(v)
			set.AppendChild(val)
		}
		one.AppendChild(set)
		list.AppendChild(one)
	}
	op.AppendChild(list)
	return op.Bytes()
}

// content strips a protocolOp's tag and length, leaving what decodeEntry reads.
func content(t testing.TB, op []byte) []byte {
	t.Helper()
	d := berDecoder{b: op}
	_, body, _, err := d.next()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestDecodeEntry(t *testing.T) {
	guid := []byte{0xa5, 0xd4, 0xb7, 0xd1, 0x52, 0x6b, 0x32, 0x4f, 0x8c, 0x8b, 0x7a, 0x6d, 0x4c, 0x1a, 0x2b, 0x3e}
	long := strings.Repeat("x", 70000) // a multi-octet length
	want := []*goldap.EntryAttribute{
		{Name: "objectGUID", Values: []string{string(guid)}, ByteValues: [][]byte{guid}},
		{Name: "member", Values: []string{"uid=a,dc=x", "uid=b,dc=x"}, ByteValues: [][]byte{[]byte("uid=a,dc=x"), []byte("uid=b,dc=x")}},
		{Name: "empty", Values: []string{}, ByteValues: [][]byte{}},
		{Name: "description", Values: []string{long}, ByteValues: [][]byte{[]byte(long)}},
	}
	e, err := decodeEntry(content(t, encodeEntry("cn=g,dc=x", want)))
	if err != nil {
		t.Fatal(err)
	}
	if e.DN != "cn=g,dc=x" || len(e.Attributes) != len(want) {
		t.Fatalf("decoded %q with %d attributes, want cn=g,dc=x with %d", e.DN, len(e.Attributes), len(want))
	}
	for i, a := range e.Attributes {
		w := want[i]
		if a.Name != w.Name || !slices.Equal(a.Values, w.Values) || !slices.EqualFunc(a.ByteValues, w.ByteValues, bytes.Equal) {
			t.Errorf("attribute %d = %q %q, want %q %q", i, a.Name, a.Values, w.Name, w.Values)
		}
	}
	if id, err := entryID(e, "objectguid"); err != nil || id != "d1b7d4a5-6b52-4f32-8c8b-7a6d4c1a2b3e" {
		t.Errorf("entryID = %q, %v", id, err)
	}
}

// TestDecodeEntryRejectsMalformed feeds every truncation and a few
// corruptions of a valid entry: each must give an error, never a panic.
func TestDecodeEntryRejectsMalformed(t *testing.T) {
	valid := content(t, encodeEntry("uid=a,dc=x", []*goldap.EntryAttribute{
		{Name: "mail", ByteValues: [][]byte{[]byte("a@x")}},
		{Name: "cn", ByteValues: [][]byte{[]byte("A"), []byte("Alpha")}},
	}))
	for n := range len(valid) {
		if _, err := decodeEntry(valid[:n]); err == nil {
			t.Errorf("a truncation to %d of %d bytes decoded", n, len(valid))
		}
	}
	for i := range valid {
		for _, b := range []byte{0x00, 0x1f, 0x84, 0xff} {
			bad := bytes.Clone(valid)
			bad[i] = b
			_, _ = decodeEntry(bad) // must not panic; some corruptions stay well-formed
		}
	}
}

func TestResultError(t *testing.T) {
	result := func(code int, diag string) []byte {
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchResultDone, nil, "done")
		op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, "code"))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "dc=x", "matched"))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diag"))
		return content(t, op.Bytes())
	}
	if err := resultError(result(0, "")); err != nil {
		t.Errorf("success: %v", err)
	}
	err := resultError(result(32, "no such entry"))
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) || !strings.Contains(err.Error(), "no such entry") {
		t.Errorf("code 32: %v", err)
	}
	if err := resultError(result(0, "")[:3]); !goldap.IsErrorWithCode(err, goldap.ErrorUnexpectedResponse) {
		t.Errorf("truncated result: %v", err)
	}
}

// silentServer accepts connections, reads what comes and never answers.
// onRequest runs when the first bytes of a request arrive.
func silentServer(t *testing.T, onRequest func()) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				if _, err := c.Read(buf); err == nil && onRequest != nil {
					onRequest()
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return "ldap://" + l.Addr().String()
}

func silentSource(t *testing.T, url string, timeout time.Duration) *Source {
	t.Helper()
	cfg := testConfig(url, "dc=x", "dc=x")
	cfg.BindDN, cfg.BindPassword, cfg.Timeout = "cn=x", "pw", timeout
	src, err := newSource("corp", cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestTimeoutOnSilentServer(t *testing.T) {
	src := silentSource(t, silentServer(t, nil), 200*time.Millisecond)
	err := src.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bind as cn=x") || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("Check = %v, want a bind timeout saying the server did not answer", err)
	}
}

// TestCancelDuringBind cancels while the bind waits for an answer that
// never comes; the timeout is far away, so only the cancellation can end it.
func TestCancelDuringBind(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := silentSource(t, silentServer(t, cancel), time.Hour)
	err := src.Check(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("Check = %v, want a connect error wrapping context.Canceled", err)
	}
}

func TestAddUserMergesDuplicateEmails(t *testing.T) {
	user := func(dn, guid string, uac string) *goldap.Entry {
		b := guidBytesForTest(guid)
		return &goldap.Entry{DN: dn, Attributes: []*goldap.EntryAttribute{
			{Name: "objectGUID", Values: []string{string(b)}, ByteValues: [][]byte{b}},
			{Name: "mail", Values: []string{" Jo@Example.com "}, ByteValues: [][]byte{[]byte(" Jo@Example.com ")}},
			{Name: "userAccountControl", Values: []string{uac}, ByteValues: [][]byte{[]byte(uac)}},
		}}
	}
	s := &Source{log: zap.NewNop(), cfg: settings{ad: true, users: userSearch{idAttr: "objectGUID", emailAttr: "mail", nameAttr: "displayName", phoneAttr: "telephoneNumber"}}}
	b := sources.NewBuilder("corp", nil)
	dir := &directory{byDN: map[string]sources.UserRef{}, byUID: map[string]sources.UserRef{}, dnByID: map[string]string{}, counted: map[string]struct{}{}}
	for _, e := range []*goldap.Entry{
		user("CN=Jo Old,DC=corp", "00000001-0000-0000-0000-000000000000", "514"),
		user("CN=Jo,DC=corp", "00000002-0000-0000-0000-000000000000", "512"),
		user("CN=Jo Third,DC=corp", "00000003-0000-0000-0000-000000000000", "512"),
	} {
		u, err := s.readUser(e, nil)
		if err == nil {
			err = s.addUser(dir, u, b)
		}
		if err != nil {
			t.Fatalf("addUser %s: %v", e.DN, err)
		}
	}

	// The enabled account replaces the disabled one; every DN maps to it.
	var refs []sources.UserRef
	for _, dn := range []string{"cn=jo old,dc=corp", "cn=jo,dc=corp", "cn=jo third,dc=corp"} {
		ref, ok := dir.byDN[dn]
		if !ok {
			t.Fatalf("%s is not in the directory", dn)
		}
		refs = append(refs, ref)
	}
	if refs[0] != refs[1] || refs[1] != refs[2] {
		t.Errorf("the three DNs map to %v, want one user", refs)
	}
	snap := b.Snapshot(false, 1)
	want := sources.User{ID: "00000002-0000-0000-0000-000000000000", Email: "Jo@Example.com"}
	if len(snap.Users) != 1 || snap.Users[want.ID] != want {
		t.Fatalf("Users = %+v, want only %+v", snap.Users, want)
	}
	if snap.Skipped[sources.SkipDuplicateEmail] != 2 {
		t.Errorf("Skipped = %v, want 2 duplicate_email", snap.Skipped)
	}
}

// guidBytesForTest is the inverse of formatGUID.
func guidBytesForTest(s string) []byte {
	h := strings.ReplaceAll(s, "-", "")
	raw := make([]byte, 16)
	for i := range raw {
		var v byte
		for _, c := range h[2*i : 2*i+2] {
			v = v<<4 | byte(strings.IndexRune("0123456789abcdef", c))
		}
		raw[i] = v
	}
	for _, r := range [][2]int{{0, 4}, {4, 6}, {6, 8}} {
		slices.Reverse(raw[r[0]:r[1]])
	}
	return raw
}

func TestReadMessage(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 200<<10) // several readChunks
	bigMsg := tlv(berSequence, tlv(berInteger, []byte{1}), tlv(berOctetString, big))
	tests := []struct {
		name    string
		stream  []byte
		want    []byte // the content read, when wantErr is ""
		wantErr string
	}{
		{name: "short form", stream: []byte{0x30, 0x03, 0x02, 0x01, 0x01}, want: []byte{0x02, 0x01, 0x01}},
		{name: "eight length octets, zero-padded", stream: []byte{0x30, 0x88, 0, 0, 0, 0, 0, 0, 0, 3, 0x02, 0x01, 0x01}, want: []byte{0x02, 0x01, 0x01}},
		{name: "larger than a read chunk", stream: bigMsg, want: bigMsg[6:]}, // 0x30 0x84 and four length octets
		{name: "not a SEQUENCE", stream: []byte{0x31, 0x03, 0x02, 0x01, 0x01}, wantErr: "malformed LDAP message: tag 0x31, want a SEQUENCE (0x30)"},
		{name: "indefinite length", stream: []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0, 0}, wantErr: "malformed LDAP message: indefinite length, which LDAP does not allow"},
		{name: "nine length octets", stream: []byte{0x30, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 3}, wantErr: "malformed LDAP message: a length of 9 octets, the most is 8"},
		{name: "length octet 0xff", stream: []byte{0x30, 0xff}, wantErr: "a length of 127 octets"},
		{name: "over the cap", stream: []byte{0x30, 0x84, 0x04, 0x00, 0x00, 0x01}, wantErr: "the server declared an LDAP message of 67108865 bytes, over the 64 MiB limit"},
		{name: "largest length there is", stream: []byte{0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, wantErr: "of 18446744073709551615 bytes, over the 64 MiB limit"},
		{name: "cut short", stream: bigMsg[:100<<10], wantErr: "the server closed the connection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &wireConn{r: bufio.NewReader(bytes.NewReader(tc.stream))}
			got, err := c.readMessage()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readMessage = %d bytes, %v; want an error containing %q", len(got), err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("readMessage = %d bytes, %v; want the %d bytes of content", len(got), err, len(tc.want))
			}
		})
	}
}

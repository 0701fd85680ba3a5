package ldap

// Fuzzing of every decoder of the wire reader, each checked against
// go-ldap's own parser (github.com/go-asn1-ber/asn1-ber and go-ldap's
// Conn) on the same bytes. The seed corpora are in testdata/fuzz/<Fuzz…>/:
// real slapd answers (written by TestDifferentialSlapd -capture-corpus)
// and hand-made hostile messages. Run one with
//
//	go test -run '^$' -fuzz FuzzReceive -fuzztime 20s ./sources/ldap/

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// streamConn is a net.Conn whose peer answers with a fixed byte stream
// and then hangs up. With gated set it answers only once a request has
// been written, as a server does; writes are discarded.
type streamConn struct {
	r      *bytes.Reader
	gate   chan struct{} // closed at the first write
	closed chan struct{}
	once   sync.Once
	close  sync.Once
}

func newStreamConn(stream []byte, gated bool) *streamConn {
	c := &streamConn{r: bytes.NewReader(stream), gate: make(chan struct{}), closed: make(chan struct{})}
	if !gated {
		close(c.gate)
	}
	return c
}

func (c *streamConn) Read(p []byte) (int, error) {
	select {
	case <-c.gate:
	case <-c.closed:
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.once.Do(func() { close(c.gate) })
	return len(p), nil
}

func (c *streamConn) Close() error {
	c.close.Do(func() { close(c.closed) })
	return nil
}

func (c *streamConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *streamConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 389}
}
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// replayRequest is the search both clients send; the answer is the stream.
func replayRequest() *goldap.SearchRequest {
	return goldap.NewSearchRequest("dc=x", goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil)
}

// searchOurs replays stream as the answer to wireConn's first request.
func searchOurs(stream []byte) (*goldap.SearchResult, error) {
	return newWireConn(newStreamConn(stream, true), 0).Search(replayRequest())
}

// searchGoLDAP replays stream as the answer to go-ldap's Conn's first
// request: go-asn1-ber's ReadPacket and go-ldap's own entry, reference,
// result and control decoding.
func searchGoLDAP(stream []byte) (*goldap.SearchResult, error) {
	conn := goldap.NewConn(newStreamConn(stream, true), false)
	conn.Start()
	defer conn.Close()
	return conn.Search(replayRequest())
}

// referenceGroups lists, per SearchResultReference message for message 1
// that go-asn1-ber reads in stream, its URIs. go-ldap keeps only the
// first of each; wireConn keeps them all.
func referenceGroups(stream []byte) [][]string {
	var groups [][]string
	r := bytes.NewReader(stream)
	for {
		p, err := ber.ReadPacket(r)
		if err != nil || len(p.Children) < 2 {
			return groups
		}
		op := p.Children[1]
		if id, _ := p.Children[0].Value.(int64); id != 1 || op.ClassType != ber.ClassApplication || op.Tag != goldap.ApplicationSearchResultReference {
			continue
		}
		var uris []string
		for _, c := range op.Children {
			s, _ := c.Value.(string)
			uris = append(uris, s)
		}
		groups = append(groups, uris)
	}
}

// diffSearch decodes stream, a server's answer to a search, with wireConn
// and with go-ldap, and reports any disagreement on what both decoded.
// wireConn is stricter (a SEQUENCE per message, definite lengths,
// one-octet tags, OCTET STRINGs where RFC 4511 says so, only answers to
// the request it made) and lenient only on parts it does not use, so
// either may fail alone; what both accept must decode the same. It
// returns the two errors.
func diffSearch(t testing.TB, stream []byte) (ours, theirs error) {
	t.Helper()
	o, ours := searchOurs(stream)
	g, theirs := searchGoLDAP(stream)
	switch {
	case ours == nil && theirs == nil:
		compareResults(t, stream, o, g)
	case ours != nil && theirs != nil:
		// Where both read a result code from the server, they must agree
		// on it. Either may find the message malformed where the other
		// reads one: wireConn refuses framing go-ldap lets through (a SET
		// for the SEQUENCE), go-ldap a result with extra elements.
		var oe, ge *goldap.Error
		if !errors.As(theirs, &ge) || ge.ResultCode >= goldap.ErrorNetwork || !errors.As(ours, &oe) || oe.ResultCode >= goldap.ErrorNetwork {
			return ours, theirs
		}
		if oe.ResultCode != ge.ResultCode || oe.MatchedDN != ge.MatchedDN || oe.Err.Error() != ge.Err.Error() {
			t.Errorf("result error: wireConn %v (matched %q), go-ldap %v (matched %q)", ours, oe.MatchedDN, theirs, ge.MatchedDN)
			return ours, theirs
		}
		compareResults(t, stream, o, g)
	}
	return ours, theirs
}

func compareResults(t testing.TB, stream []byte, ours, theirs *goldap.SearchResult) {
	t.Helper()
	if len(ours.Entries) != len(theirs.Entries) {
		t.Errorf("wireConn decoded %d entries, go-ldap %d", len(ours.Entries), len(theirs.Entries))
		return
	}
	for i, o := range ours.Entries {
		g := theirs.Entries[i]
		if o.DN != g.DN || len(o.Attributes) != len(g.Attributes) {
			t.Errorf("entry %d: wireConn %q with %d attributes, go-ldap %q with %d", i, o.DN, len(o.Attributes), g.DN, len(g.Attributes))
			continue
		}
		for j, oa := range o.Attributes {
			ga := g.Attributes[j]
			if oa.Name != ga.Name || !slices.Equal(oa.Values, ga.Values) || !slices.EqualFunc(oa.ByteValues, ga.ByteValues, bytes.Equal) {
				t.Errorf("entry %q attribute %d: wireConn %q %q, go-ldap %q %q", o.DN, j, oa.Name, oa.Values, ga.Name, ga.Values)
			}
		}
	}
	groups := referenceGroups(stream)
	var all, first []string
	for _, g := range groups {
		all = append(all, g...)
		first = append(first, g[0])
	}
	if !slices.Equal(ours.Referrals, all) || !slices.Equal(theirs.Referrals, first) {
		t.Errorf("references: wireConn %q, go-ldap %q; the stream's are %q", ours.Referrals, theirs.Referrals, groups)
	}
	if len(ours.Controls) != len(theirs.Controls) {
		t.Errorf("wireConn decoded %d controls, go-ldap %d", len(ours.Controls), len(theirs.Controls))
		return
	}
	for i, o := range ours.Controls {
		if g := theirs.Controls[i]; o.GetControlType() != g.GetControlType() || o.String() != g.String() {
			t.Errorf("control %d: wireConn %s, go-ldap %s", i, o, g)
		}
	}
}

// tlv encodes one BER element with a definite, minimal length.
func tlv(tag byte, content ...[]byte) []byte {
	body := bytes.Join(content, nil)
	n := len(body)
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 1<<8:
		out = append(out, 0x81, byte(n))
	case n < 1<<16:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, body...)
}

// message1 is an LDAPMessage for message ID 1: a protocolOp and, when
// given, the content of its [0] controls.
func message1(op []byte, controls ...[]byte) []byte {
	parts := [][]byte{tlv(berInteger, []byte{1}), op}
	if len(controls) > 0 {
		parts = append(parts, tlv(berControls, controls...))
	}
	return tlv(berSequence, parts...)
}

// successResult is an LDAPResult's content: success, no matched DN, no message.
var successResult = []byte{berEnumerated, 1, 0, berOctetString, 0, berOctetString, 0}

func searchDone(result []byte, controls ...[]byte) []byte {
	return message1(tlv(tagSearchDone, result), controls...)
}

// FuzzReadMessage reads messages off a stream until it fails, and reads
// the same stream with go-asn1-ber's ReadPacket alongside: a message both
// read must span the same bytes, and readMessage may refuse only what it
// refuses by design (a tag other than SEQUENCE, an indefinite length, a
// length over maxMessageSize).
func FuzzReadMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		c := &wireConn{r: bufio.NewReaderSize(src, 64<<10)}
		ref := bytes.NewReader(data)
		total := 0
		for range 64 {
			start := len(data) - ref.Len()
			msg, err := c.readMessage()
			p, refErr := ber.ReadPacket(ref)
			end := len(data) - ref.Len()
			if err != nil {
				if refErr == nil && !refusedByDesign(data[start:]) {
					t.Fatalf("readMessage failed (%v) on a message go-asn1-ber reads: % x", err, data[start:end])
				}
				return
			}
			total += len(msg)
			if total > len(data) || len(msg) > maxMessageSize {
				t.Fatalf("read %d bytes of messages from %d bytes", total, len(data))
			}
			if refErr != nil {
				return // content readMessage does not look into
			}
			consumed := len(data) - src.Len() - c.r.Buffered()
			if consumed != end || !bytes.Equal(msg, data[end-len(msg):end]) || p.ClassType != ber.ClassUniversal || p.TagType != ber.TypeConstructed || p.Tag != ber.TagSequence {
				t.Fatalf("readMessage read bytes %d to %d, go-asn1-ber %d to %d (%+v)", start, consumed, start, end, p.Identifier)
			}
		}
	})
}

// refusedByDesign reports whether the message at the start of b has a
// header readMessage refuses on purpose.
func refusedByDesign(b []byte) bool {
	if len(b) < 2 || b[0] != berSequence || b[1] == 0x80 {
		return true
	}
	if b[1] < 0x80 {
		return false
	}
	octets := int(b[1] & 0x7f)
	if octets > maxLengthOctets || len(b) < 2+octets {
		return true
	}
	n := uint64(0)
	for _, o := range b[2 : 2+octets] {
		n = n<<8 | uint64(o)
	}
	return n > maxMessageSize
}

// FuzzReceive hands a stream to receive as the answers to message 1, then
// replays it to a whole search by wireConn and by go-ldap (diffSearch).
func FuzzReceive(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := newWireConn(newStreamConn(stream, false), 0)
		for range 64 {
			tag, body, controls, err := c.receive(1)
			if err != nil {
				var le *goldap.Error
				if !errors.As(err, &le) {
					t.Fatalf("receive error %v is no *ldap.Error", err)
				}
				break
			}
			if tag&0x1f == 0x1f || len(body) > len(stream) || len(controls) > len(stream) {
				t.Fatalf("receive returned tag 0x%02x, %d bytes of body and %d of controls from %d bytes", tag, len(body), len(controls), len(stream))
			}
		}
		diffSearch(t, stream)
	})
}

// FuzzResultError decodes an LDAPResult with resultError and with
// go-ldap's GetLDAPError: where both read a result, they must agree.
func FuzzResultError(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		ours := resultError(body)
		var oe *goldap.Error
		if ours != nil && !errors.As(ours, &oe) {
			t.Fatalf("resultError = %v, no *ldap.Error", ours)
		}
		msg := message1(tlv(tagSearchDone, body))
		if p, err := ber.DecodePacketErr(msg); err == nil {
			theirs := goldap.GetLDAPError(p)
			var ge *goldap.Error
			parsed := func(e *goldap.Error) bool { return e.ResultCode < goldap.ErrorNetwork }
			switch {
			case ours == nil && theirs != nil && errors.As(theirs, &ge) && parsed(ge):
				t.Fatalf("resultError: success, go-ldap: %v", theirs)
			case ours != nil && parsed(oe) && theirs == nil:
				t.Fatalf("resultError: %v, go-ldap: success", ours)
			case ours != nil && parsed(oe) && errors.As(theirs, &ge) && parsed(ge) &&
				(oe.ResultCode != ge.ResultCode || oe.MatchedDN != ge.MatchedDN || oe.Err.Error() != ge.Err.Error()):
				t.Fatalf("resultError: %v (matched %q), go-ldap: %v (matched %q)", ours, oe.MatchedDN, theirs, ge.MatchedDN)
			}
		}
		diffSearch(t, msg)
	})
}

// FuzzDecodeControls decodes a message's controls with decodeControls and
// as go-ldap does (go-asn1-ber, then DecodeControl on each child).
func FuzzDecodeControls(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		ours, err := decodeControls(body)
		if err == nil {
			if p, perr := ber.DecodePacketErr(tlv(berControls, body)); perr == nil {
				for i, child := range p.Children {
					theirs, terr := goldap.DecodeControl(child)
					switch {
					case i >= len(ours):
						t.Fatalf("decodeControls read %d controls, go-ldap more", len(ours))
					case terr != nil:
						t.Fatalf("control %d: decodeControls read %s, go-ldap: %v", i, ours[i], terr)
					case theirs.GetControlType() != ours[i].GetControlType() || theirs.String() != ours[i].String():
						t.Fatalf("control %d: decodeControls %s, go-ldap %s", i, ours[i], theirs)
					}
				}
				if len(p.Children) != len(ours) {
					t.Fatalf("decodeControls read %d controls, go-ldap %d", len(ours), len(p.Children))
				}
			}
		}
		diffSearch(t, searchDone(successResult, body))
	})
}

// FuzzDecodeEntry decodes a SearchResultEntry with decodeEntry, then as
// the answer to a search by wireConn and by go-ldap.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(content(f, encodeEntry("uid=a,dc=x", []*goldap.EntryAttribute{{Name: "mail", ByteValues: [][]byte{[]byte("a@x")}}})))
	f.Add([]byte{0x04, 0x00, 0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err == nil && e == nil {
			t.Fatal("no entry and no error")
		}
		diffSearch(t, append(message1(tlv(tagSearchEntry, b)), searchDone(successResult)...))
	})
}

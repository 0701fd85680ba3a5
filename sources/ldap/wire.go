package ldap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"time"
	"unsafe"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// wireConn is a synchronous LDAP client for the operations a fetch needs:
// simple bind, StartTLS, search and unbind (RFC 4511). go-ldap's Conn
// decodes each response into a generic BER tree and passes it through
// three goroutines; for 50,000 entries that made a fetch several times
// slower than ldapsearch. wireConn reads each message into one buffer and
// decodes the few message types a search returns straight from its bytes.
// go-ldap still provides the types, the filter compiler and the controls.
//
// It runs one operation at a time and is not safe for concurrent use.
type wireConn struct {
	unsupported

	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	lastID  int64
	closed  bool
	// answered is set once a whole message has arrived: from then on the
	// server is known to speak LDAP on this port.
	answered bool
	// op names the operation under way, for errors ("search").
	op string
	// untie, when set, ends the tie to the context the connection was
	// opened under (see Source.connect); Close calls it.
	untie func() bool
}

var _ goldap.Client = (*wireConn)(nil)

// BER identifiers (tag octets) of what a search conversation carries.
const (
	berSequence    = 0x30
	berSet         = 0x31
	berInteger     = 0x02
	berEnumerated  = 0x0a
	berOctetString = 0x04
	berControls    = 0xa0 // [0] constructed, after protocolOp
	// Application tags, constructed (0x60 | number).
	tagBindResponse     = 0x60 | goldap.ApplicationBindResponse
	tagSearchEntry      = 0x60 | goldap.ApplicationSearchResultEntry
	tagSearchDone       = 0x60 | goldap.ApplicationSearchResultDone
	tagSearchReference  = 0x60 | goldap.ApplicationSearchResultReference
	tagExtendedResponse = 0x60 | goldap.ApplicationExtendedResponse
	tagIntermediate     = 0x60 | goldap.ApplicationIntermediateResponse
)

const oidStartTLS = "1.3.6.1.4.1.1466.20037"

func newWireConn(conn net.Conn, timeout time.Duration) *wireConn {
	return &wireConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), timeout: timeout}
}

// Start is part of goldap.Client; a wireConn needs no reader goroutine.
func (c *wireConn) Start() {}

// SetTimeout bounds each operation: a request and all its responses.
func (c *wireConn) SetTimeout(d time.Duration) { c.timeout = d }

// GetLastError is part of goldap.Client; errors are returned by each call.
func (c *wireConn) GetLastError() error { return nil }

// IsClosing reports whether Close was called.
func (c *wireConn) IsClosing() bool { return c.closed }

// TLSConnectionState returns the TLS state when the connection is encrypted.
func (c *wireConn) TLSConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := c.conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// Close sends an unbind and closes the connection.
func (c *wireConn) Close() error {
	if c.untie != nil {
		c.untie()
	}
	if c.closed {
		return nil
	}
	_ = c.Unbind()
	return c.conn.Close()
}

// detach hands the connection over to another client: it lifts the
// operation deadline and returns the socket (TLS, when encrypted), which c
// must not use again. It fails when the server sent what c has not read.
func (c *wireConn) detach() (net.Conn, error) {
	if c.r.Buffered() > 0 {
		return nil, goldap.NewError(goldap.ErrorUnexpectedResponse, errors.New("the server sent data before the search"))
	}
	if err := c.conn.SetDeadline(time.Time{}); err != nil {
		return nil, goldap.NewError(goldap.ErrorNetwork, err)
	}
	return c.conn, nil
}

// Unbind tells the server the client is leaving (RFC 4511 4.3); the
// connection is unusable afterwards.
func (c *wireConn) Unbind() error {
	if c.closed {
		return goldap.ErrConnUnbound
	}
	c.closed = true
	_ = c.conn.SetDeadline(time.Now().Add(time.Second))
	_, err := c.send(ber.Encode(ber.ClassApplication, ber.TypePrimitive, goldap.ApplicationUnbindRequest, nil, "Unbind Request"), nil)
	return err
}

// Bind does a simple bind. An empty password is refused: the server would
// take it as an unauthenticated bind and succeed without checking anything.
func (c *wireConn) Bind(username, password string) error {
	if password == "" {
		return goldap.NewError(goldap.ErrorEmptyPassword, errors.New("empty password: the bind password is not set"))
	}
	c.op = "bind"
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationBindRequest, nil, "Bind Request")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, username, "User Name"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, password, "Password"))
	tag, body, err := c.roundTrip(op)
	if err != nil {
		return err
	}
	if tag != tagBindResponse {
		return unexpected("bind response", tag)
	}
	return resultError(body)
}

// StartTLS upgrades the connection (RFC 4511 4.14). A handshake failure
// is returned with its x509 cause intact.
func (c *wireConn) StartTLS(conf *tls.Config) error {
	if _, ok := c.conn.(*tls.Conn); ok {
		return goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: already encrypted"))
	}
	c.op = "StartTLS request"
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationExtendedRequest, nil, "Start TLS")
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidStartTLS, "TLS Extended Command"))
	tag, body, err := c.roundTrip(op)
	if err != nil {
		return err
	}
	if tag != tagExtendedResponse {
		return unexpected("StartTLS response", tag)
	}
	if err := resultError(body); err != nil {
		return err
	}
	if c.r.Buffered() > 0 {
		return errors.New("ldap: the server sent data before the TLS handshake")
	}
	tc := tls.Client(c.conn, conf)
	ctx := context.Background()
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.conn = tc
	c.r.Reset(tc)
	return nil
}

// Search runs one search request (one page when it carries a paging
// control) and returns its entries, references and response controls.
// On a result code other than success it returns what arrived with a
// *goldap.Error.
func (c *wireConn) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	op, err := encodeSearch(req)
	if err != nil {
		return nil, err
	}
	c.op = "search"
	id, err := c.send(op, req.Controls)
	if err != nil {
		return nil, err
	}
	res := &goldap.SearchResult{}
	for {
		tag, body, controls, err := c.receive(id)
		if err != nil {
			return res, err
		}
		switch tag {
		case tagSearchEntry:
			e, err := decodeEntry(body)
			if err != nil {
				return res, err
			}
			res.Entries = append(res.Entries, e)
		case tagSearchReference:
			refs, err := decodeReference(body)
			if err != nil {
				return res, err
			}
			res.Referrals = append(res.Referrals, refs...)
		case tagIntermediate:
			// Not asked for; nothing in a plain search depends on it.
		case tagSearchDone:
			if res.Controls, err = decodeControls(controls); err != nil {
				return res, err
			}
			return res, resultError(body)
		default:
			return res, unexpected("search response", tag)
		}
	}
}

func encodeSearch(req *goldap.SearchRequest) (*ber.Packet, error) {
	filter, err := goldap.CompileFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchRequest, nil, "Search Request")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, req.BaseDN, "Base DN"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.Scope), "Scope"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.DerefAliases), "Deref Aliases"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(req.SizeLimit), "Size Limit"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(req.TimeLimit), "Time Limit"))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, req.TypesOnly, "Types Only"))
	op.AppendChild(filter)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	for _, a := range req.Attributes {
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a, "Attribute"))
	}
	op.AppendChild(attrs)
	return op, nil
}

// send writes one LDAPMessage and returns its message ID. It also starts
// the operation's deadline.
func (c *wireConn) send(op *ber.Packet, controls []goldap.Control) (int64, error) {
	if c.closed && op.Tag != goldap.ApplicationUnbindRequest {
		return 0, goldap.ErrConnUnbound
	}
	c.lastID++
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, c.lastID, "MessageID"))
	msg.AppendChild(op)
	if len(controls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		for _, ctrl := range controls {
			cs.AppendChild(ctrl.Encode())
		}
		msg.AppendChild(cs)
	}
	if c.timeout > 0 && op.Tag != goldap.ApplicationUnbindRequest {
		if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, goldap.NewError(goldap.ErrorNetwork, err)
		}
	}
	if _, err := c.conn.Write(msg.Bytes()); err != nil {
		return 0, c.ioError("send request", err)
	}
	return c.lastID, nil
}

func (c *wireConn) roundTrip(op *ber.Packet) (tag byte, body []byte, err error) {
	id, err := c.send(op, nil)
	if err != nil {
		return 0, nil, err
	}
	tag, body, _, err = c.receive(id)
	return tag, body, err
}

// receive reads the next message, which must answer message id, and
// returns its protocolOp's tag and content and its controls' content.
func (c *wireConn) receive(id int64) (tag byte, body, controls []byte, err error) {
	msg, err := c.readMessage()
	if err != nil {
		return 0, nil, nil, err
	}
	d := berDecoder{b: msg}
	gotID, err := d.integer(berInteger)
	if err != nil {
		return 0, nil, nil, err
	}
	tag, body, _, err = d.next()
	if err != nil {
		return 0, nil, nil, err
	}
	if !d.empty() {
		var ctag byte
		if ctag, controls, _, err = d.next(); err != nil {
			return 0, nil, nil, err
		}
		if ctag != berControls {
			controls = nil
		}
	}
	if gotID == 0 && tag == tagExtendedResponse {
		// Notice of disconnection (RFC 4511 4.4.1): the server is leaving.
		c.closed = true
		_ = c.conn.Close()
		lost := fmt.Errorf("%w during the %s with a notice of disconnection", errConnectionLost, c.op)
		if err := resultError(body); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: %w", lost, err)
		}
		return 0, nil, nil, goldap.NewError(goldap.ErrorNetwork, lost)
	}
	if gotID != id {
		return 0, nil, nil, goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("got a response to message %d while waiting for %d", gotID, id))
	}
	return tag, body, controls, nil
}

// readMessage reads one LDAPMessage SEQUENCE and returns its content. The
// buffer grows with the bytes that actually arrive, never with what the
// length octets claim: a peer declaring a large message and sending
// nothing costs readChunk bytes, not the declared size.
func (c *wireConn) readMessage() ([]byte, error) {
	tag, err := c.r.ReadByte()
	if err != nil {
		return nil, c.readError(err)
	}
	if tag != berSequence {
		return nil, malformedMessage("tag 0x%02x, want a SEQUENCE (0x30)", tag)
	}
	first, err := c.r.ReadByte()
	if err != nil {
		return nil, c.readError(err)
	}
	n := uint64(first)
	if first >= 0x80 {
		octets := int(first & 0x7f)
		switch {
		case octets == 0:
			return nil, malformedMessage("indefinite length, which LDAP does not allow (RFC 4511 section 5.1)")
		case octets > maxLengthOctets:
			return nil, malformedMessage("a length of %d octets, the most is %d", octets, maxLengthOctets)
		}
		n = 0
		for range octets {
			b, err := c.r.ReadByte()
			if err != nil {
				return nil, c.readError(err)
			}
			n = n<<8 | uint64(b) // eight octets at most: no overflow
		}
	}
	if n > maxMessageSize {
		return nil, goldap.NewError(goldap.ErrorUnexpectedResponse,
			fmt.Errorf("the server declared an LDAP message of %d bytes, over the %d MiB limit", n, maxMessageSize>>20))
	}
	size := int(n)
	msg := make([]byte, 0, min(size, readChunk))
	for len(msg) < size {
		if len(msg) == cap(msg) {
			// At most doubles: what is allocated stays within twice what arrived.
			msg = slices.Grow(msg, min(size-len(msg), cap(msg)))
		}
		end := min(size, cap(msg))
		got, err := io.ReadFull(c.r, msg[len(msg):end])
		msg = msg[:len(msg)+got]
		if err != nil {
			return nil, c.readError(err)
		}
	}
	c.answered = true
	return msg, nil
}

// Limits of one message read from the server.
const (
	// maxMessageSize bounds one LDAP message. OpenLDAP returns a group's
	// whole member list in one message: a group of about a million
	// members is 50-60 MiB. A larger message is refused rather than
	// buffered (README "LDAP").
	maxMessageSize = 64 << 20
	// readChunk is the most readMessage allocates before bytes arrive.
	readChunk = 64 << 10
	// maxLengthOctets bounds a BER long-form length: 8 octets hold any
	// length, and longer forms only pad it with zeros.
	maxLengthOctets = 8
)

func malformedMessage(format string, args ...any) error {
	return goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("malformed LDAP message: "+format, args...))
}

// The server hung up: errServerClosed before it answered anything on the
// connection, which is what a TLS port does with a plain request (and a
// plain port with a TLS handshake); errConnectionLost after it had
// answered, when the scheme and port are known to be right.
var (
	errServerClosed   = errors.New("the server closed the connection")
	errConnectionLost = errors.New("the server closed the connection")
)

// readError turns a failed read into a network error that says whether
// the server hung up, and during what.
func (c *wireConn) readError(err error) error {
	return c.ioError("read response", err)
}

func (c *wireConn) ioError(what string, err error) error {
	if !hungUp(err) {
		return goldap.NewError(goldap.ErrorNetwork, fmt.Errorf("%s: %w", what, err))
	}
	if !c.answered {
		return goldap.NewError(goldap.ErrorNetwork, errServerClosed)
	}
	return goldap.NewError(goldap.ErrorNetwork, fmt.Errorf("%w during the %s", errConnectionLost, c.op))
}

// hungUp reports whether err means the peer closed the connection.
func hungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// decodeEntry decodes a SearchResultEntry's content. Every string of the
// entry (DN, names, values) shares body's memory, as ByteValues do: a
// large fetch decodes hundreds of thousands of values, and one allocation
// per value made the garbage collector a third of its cost; a copy of each
// entry's bytes for its strings was still 15 % of the fetch's CPU and its
// peak memory. That is sound because body is the buffer readMessage made
// for this one message, which nothing writes to afterwards: a caller must
// not modify ByteValues (the strings would change with them), and one
// keeping a small string of a big entry should clone it.
func decodeEntry(body []byte) (*goldap.Entry, error) {
	str := func(sub []byte) string { return unsafe.String(unsafe.SliceData(sub), len(sub)) }
	d := berDecoder{b: body}
	dn, err := d.octets()
	if err != nil {
		return nil, err
	}
	list, err := d.expect(berSequence)
	if err != nil {
		return nil, err
	}
	attrCount, valueCount, err := countAttributes(list)
	if err != nil {
		return nil, err
	}
	e := &goldap.Entry{DN: str(dn), Attributes: make([]*goldap.EntryAttribute, attrCount)}
	attrs := make([]goldap.EntryAttribute, attrCount)
	values, byteValues := make([]string, valueCount), make([][]byte, valueCount)
	ld := berDecoder{b: list}
	for i := range attrs {
		// countAttributes has checked the structure; only values remain.
		one, _ := ld.expect(berSequence)
		ad := berDecoder{b: one}
		name, _ := ad.octets()
		set, _ := ad.expect(berSet)
		a := &attrs[i]
		a.Name = str(name)
		vd := berDecoder{b: set}
		k := 0
		for ; !vd.empty(); k++ {
			v, err := vd.octets()
			if err != nil {
				return nil, err
			}
			values[k], byteValues[k] = str(v), v
		}
		a.Values, a.ByteValues = values[:k:k], byteValues[:k:k]
		values, byteValues = values[k:], byteValues[k:]
		e.Attributes[i] = a
	}
	return e, nil
}

// countAttributes checks a PartialAttributeList's structure and counts
// its attributes and values.
func countAttributes(list []byte) (attrs, values int, err error) {
	ld := berDecoder{b: list}
	for ; !ld.empty(); attrs++ {
		one, err := ld.expect(berSequence)
		if err != nil {
			return 0, 0, err
		}
		ad := berDecoder{b: one}
		if _, err := ad.octets(); err != nil {
			return 0, 0, err
		}
		set, err := ad.expect(berSet)
		if err != nil {
			return 0, 0, err
		}
		n, err := countElements(set)
		if err != nil {
			return 0, 0, err
		}
		values += n
	}
	return attrs, values, nil
}

// countElements counts the BER elements in b.
func countElements(b []byte) (int, error) {
	d := berDecoder{b: b}
	n := 0
	for !d.empty() {
		if _, _, _, err := d.next(); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// decodeReference decodes a SearchResultReference's content: a SEQUENCE
// SIZE (1..MAX) OF URI (RFC 4511 4.5.3).
func decodeReference(body []byte) ([]string, error) {
	var out []string
	d := berDecoder{b: body}
	for !d.empty() {
		s, err := d.octets()
		if err != nil {
			return nil, err
		}
		out = append(out, string(s))
	}
	if len(out) == 0 {
		return nil, malformedMessage("a search continuation reference without a URI")
	}
	return out, nil
}

// decodeControls decodes the content of a message's [0] Controls.
func decodeControls(body []byte) ([]goldap.Control, error) {
	var out []goldap.Control
	d := berDecoder{b: body}
	for !d.empty() {
		_, _, raw, err := d.next()
		if err != nil {
			return nil, err
		}
		p, err := ber.DecodePacketErr(raw)
		if err != nil {
			return nil, goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("malformed control: %w", err))
		}
		ctrl, err := goldap.DecodeControl(p)
		if err != nil {
			return nil, goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("malformed control: %w", err))
		}
		out = append(out, ctrl)
	}
	return out, nil
}

// resultError reads an LDAPResult (RFC 4511 4.1.9) and returns nil for
// success or a *goldap.Error carrying the result code.
func resultError(body []byte) error {
	d := berDecoder{b: body}
	tag := byte(berEnumerated)
	if len(body) > 0 && body[0] == berInteger {
		tag = berInteger // not RFC 4511's ENUMERATED, but unmistakable: go-ldap takes it too
	}
	code, err := d.integer(tag)
	if err != nil {
		return err
	}
	matched, err := d.octets()
	if err != nil {
		return err
	}
	diag, err := d.octets()
	if err != nil {
		return err
	}
	if code == goldap.LDAPResultSuccess {
		return nil
	}
	if code < 0 || code > 0xffff {
		return goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("result code %d out of range", code))
	}
	return &goldap.Error{ResultCode: uint16(code), MatchedDN: string(matched), Err: errors.New(string(diag))}
}

func unexpected(want string, tag byte) error {
	return goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("got an LDAP message with tag 0x%02x, want a %s", tag, want))
}

// berDecoder walks a run of BER elements with definite lengths, the only
// form LDAP allows (RFC 4511 5.1).
type berDecoder struct{ b []byte }

var errMalformed = goldap.NewError(goldap.ErrorUnexpectedResponse, errors.New("malformed LDAP message"))

func (d *berDecoder) empty() bool { return len(d.b) == 0 }

// next returns the next element's tag, content and whole encoding.
func (d *berDecoder) next() (tag byte, content, raw []byte, err error) {
	b := d.b
	if len(b) < 2 || b[0]&0x1f == 0x1f { // LDAP uses no multi-octet tags
		return 0, nil, nil, errMalformed
	}
	n, hdr := int(b[1]), 2
	if b[1] >= 0x80 {
		// 0x80 is the indefinite form, which LDAP does not allow.
		octets := int(b[1] & 0x7f)
		if octets == 0 || octets > maxLengthOctets || len(b) < 2+octets {
			return 0, nil, nil, errMalformed
		}
		n = 0
		for _, o := range b[2 : 2+octets] {
			// Checked per octet: no content is longer than b, and n cannot overflow.
			if n = n<<8 | int(o); n > len(b) {
				return 0, nil, nil, errMalformed
			}
		}
		hdr += octets
	}
	if n > len(b)-hdr {
		return 0, nil, nil, errMalformed
	}
	d.b = b[hdr+n:]
	return b[0], b[hdr : hdr+n], b[:hdr+n], nil
}

// expect returns the content of the next element, which must have tag.
func (d *berDecoder) expect(tag byte) ([]byte, error) {
	got, content, _, err := d.next()
	if err != nil {
		return nil, err
	}
	if got != tag {
		return nil, errMalformed
	}
	return content, nil
}

func (d *berDecoder) octets() ([]byte, error) { return d.expect(berOctetString) }

// integer decodes a two's complement INTEGER or ENUMERATED of up to 8 octets.
func (d *berDecoder) integer(tag byte) (int64, error) {
	b, err := d.expect(tag)
	if err != nil {
		return 0, err
	}
	if len(b) == 0 || len(b) > 8 {
		return 0, errMalformed
	}
	v := int64(int8(b[0]))
	for _, o := range b[1:] {
		v = v<<8 | int64(o)
	}
	return v, nil
}

// unsupported answers the goldap.Client methods a fetch never calls.
type unsupported struct{}

var errUnsupported = goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: operation not supported by the ptsync LDAP client"))

func (unsupported) UnauthenticatedBind(string) error { return errUnsupported }
func (unsupported) SimpleBind(*goldap.SimpleBindRequest) (*goldap.SimpleBindResult, error) {
	return nil, errUnsupported
}
func (unsupported) ExternalBind() error                          { return errUnsupported }
func (unsupported) NTLMUnauthenticatedBind(string, string) error { return errUnsupported }
func (unsupported) Add(*goldap.AddRequest) error                 { return errUnsupported }
func (unsupported) Del(*goldap.DelRequest) error                 { return errUnsupported }
func (unsupported) Modify(*goldap.ModifyRequest) error           { return errUnsupported }
func (unsupported) ModifyDN(*goldap.ModifyDNRequest) error       { return errUnsupported }
func (unsupported) Compare(string, string, string) (bool, error) { return false, errUnsupported }
func (unsupported) Extended(*goldap.ExtendedRequest) (*goldap.ExtendedResponse, error) {
	return nil, errUnsupported
}
func (unsupported) ModifyWithResult(*goldap.ModifyRequest) (*goldap.ModifyResult, error) {
	return nil, errUnsupported
}
func (unsupported) PasswordModify(*goldap.PasswordModifyRequest) (*goldap.PasswordModifyResult, error) {
	return nil, errUnsupported
}
func (unsupported) SearchWithPaging(*goldap.SearchRequest, uint32) (*goldap.SearchResult, error) {
	return nil, errUnsupported
}
func (unsupported) DirSync(*goldap.SearchRequest, int64, int64, []byte) (*goldap.SearchResult, error) {
	return nil, errUnsupported
}
func (unsupported) SearchAsync(context.Context, *goldap.SearchRequest, int) goldap.Response {
	return failedResponse{}
}
func (unsupported) DirSyncAsync(context.Context, *goldap.SearchRequest, int, int64, int64, []byte) goldap.Response {
	return failedResponse{}
}
func (unsupported) Syncrepl(context.Context, *goldap.SearchRequest, int, goldap.ControlSyncRequestMode, []byte, bool) goldap.Response {
	return failedResponse{}
}

// failedResponse is the goldap.Response of an unsupported operation.
type failedResponse struct{}

func (failedResponse) Entry() *goldap.Entry       { return nil }
func (failedResponse) Referral() string           { return "" }
func (failedResponse) Controls() []goldap.Control { return nil }
func (failedResponse) Err() error                 { return errUnsupported }
func (failedResponse) Next() bool                 { return false }

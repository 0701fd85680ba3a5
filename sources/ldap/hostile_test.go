package ldap

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
)

// hostileServer accepts LDAP connections on 127.0.0.1 and hands each to
// serve, which plays the server. It returns the ldap:// URL.
func hostileServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	return "ldap://" + l.Addr().String()
}

// readRequest reads one request from the client and returns its message ID.
func readRequest(c net.Conn) (int64, error) {
	p, err := ber.ReadPacket(c)
	if err != nil {
		return 0, err
	}
	if len(p.Children) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	id, _ := p.Children[0].Value.(int64)
	return id, nil
}

// answer encodes one LDAPMessage with message ID id around op.
func answer(id int64, op *ber.Packet) []byte {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	msg.AppendChild(op)
	return msg.Bytes()
}

func bindSuccess(id int64) []byte {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationBindResponse, nil, "Bind Response")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "resultCode"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnosticMessage"))
	return answer(id, op)
}

func hostileSource(t *testing.T, url string, timeout time.Duration) *Source {
	t.Helper()
	cfg := testConfig(url, "ou=people,dc=x", "ou=groups,dc=x")
	cfg.BindDN, cfg.BindPassword, cfg.Timeout = "cn=reader,dc=x", "pw", timeout
	src, err := newSource("corp", cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// fetchAllocating runs a whole fetch and returns how long it took, how
// many bytes the process allocated meanwhile, and its error.
func fetchAllocating(t *testing.T, src *Source) (time.Duration, uint64, error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	snap, err := src.Fetch(context.Background())
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if snap != nil {
		t.Errorf("Fetch returned a snapshot of %d users", len(snap.Users))
	}
	return took, after.TotalAlloc - before.TotalAlloc, err
}

// allocBudget is more than a fetch of a few messages needs, and far less
// than any length a hostile server declares below.
const allocBudget = 4 << 20

// TestHostileServerDeclaresAGigabyte answers the bind with 8 bytes: a
// SEQUENCE declaring 1 GiB and the start of a message ID. The fetch must
// fail at once, without making room for what was declared.
func TestHostileServerDeclaresAGigabyte(t *testing.T) {
	url := hostileServer(t, func(c net.Conn) {
		if _, err := readRequest(c); err != nil {
			return
		}
		_, _ = c.Write([]byte{0x30, 0x84, 0x40, 0x00, 0x00, 0x00, 0x02, 0x01})
		_, _ = io.Copy(io.Discard, c) // and then nothing
	})
	src := hostileSource(t, url, 30*time.Second)
	took, allocated, err := fetchAllocating(t, src)
	if allocated > allocBudget {
		t.Errorf("Fetch allocated %d MiB, want under %d MiB", allocated>>20, allocBudget>>20)
	}
	if took > 5*time.Second {
		t.Errorf("Fetch took %s, want it to fail at once, not at the 30s timeout", took)
	}
	if err == nil || !strings.Contains(err.Error(), "bind as cn=reader,dc=x") || !strings.Contains(err.Error(), "the server declared an LDAP message of 1073741824 bytes, over the 64 MiB limit") {
		t.Errorf("Fetch error = %v, want the bind failing on a message over the 64 MiB limit", err)
	}
}

// TestHostileServerNeverFinishesAMessage declares a 48 MiB answer to the
// bind (under the cap) and trickles it: the fetch ends at the timeout,
// having allocated only about what arrived.
func TestHostileServerNeverFinishesAMessage(t *testing.T) {
	url := hostileServer(t, func(c net.Conn) {
		if _, err := readRequest(c); err != nil {
			return
		}
		if _, err := c.Write([]byte{0x30, 0x84, 0x03, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01}); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte{0}, 1024)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	src := hostileSource(t, url, 500*time.Millisecond)
	took, allocated, err := fetchAllocating(t, src)
	if allocated > allocBudget {
		t.Errorf("Fetch allocated %d MiB, want under %d MiB", allocated>>20, allocBudget>>20)
	}
	if took > 5*time.Second {
		t.Errorf("Fetch took %s, want it to end at the 500ms timeout", took)
	}
	if err == nil || !strings.Contains(err.Error(), "bind as cn=reader,dc=x") || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("Fetch error = %v, want the bind timing out", err)
	}
}

// TestHostileServerEndlessSearch binds properly, then answers the search
// with search result entries that never end: the search ends at the
// timeout, however much keeps arriving.
func TestHostileServerEndlessSearch(t *testing.T) {
	entry := encodeEntry("uid=x,ou=people,dc=x", []*goldap.EntryAttribute{{Name: "mail", ByteValues: [][]byte{[]byte("x@x")}}})
	url := hostileServer(t, func(c net.Conn) {
		id, err := readRequest(c)
		if err != nil || func() error { _, err := c.Write(bindSuccess(id)); return err }() != nil {
			return
		}
		if id, err = readRequest(c); err != nil {
			return
		}
		op, _ := ber.DecodePacketErr(entry)
		msg := answer(id, op)
		for {
			if _, err := c.Write(bytes.Repeat(msg, 100)); err != nil {
				return
			}
		}
	})
	src := hostileSource(t, url, 500*time.Millisecond)
	start := time.Now()
	snap, err := src.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("Fetch = %d users, error %v; want a search timing out", len(snap.Users), err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Fetch took %s, want it to end at the 500ms timeout", took)
	}
}

// TestHostileServerIndefiniteLength answers the bind with a message of
// indefinite length, which LDAP forbids.
func TestHostileServerIndefiniteLength(t *testing.T) {
	url := hostileServer(t, func(c net.Conn) {
		if _, err := readRequest(c); err != nil {
			return
		}
		_, _ = c.Write([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x61, 0x80})
		_, _ = io.Copy(io.Discard, c)
	})
	err := hostileSource(t, url, 30*time.Second).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "malformed LDAP message: indefinite length, which LDAP does not allow") {
		t.Fatalf("Check = %v, want a malformed message error naming the indefinite length", err)
	}
}

// killer kills the server just before the n-th request of the user
// search is sent, once the group search (one page) has its answer: only
// the user search is then under way.
type killer struct {
	srv        *slapd.Server
	n          int
	mu         sync.Mutex
	count      int
	groupsDone chan struct{}
	groupsOnce sync.Once
}

// killOnSearch is one connection watched by a killer.
type killOnSearch struct {
	goldap.Client
	k *killer
}

func (c *killOnSearch) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	if req.BaseDN != slapd.PeopleDN {
		defer c.k.groupsOnce.Do(func() { close(c.k.groupsDone) })
		return c.Client.Search(req)
	}
	c.k.mu.Lock()
	c.k.count++
	if c.k.count == c.k.n {
		<-c.k.groupsDone
		c.k.srv.Kill()
	}
	c.k.mu.Unlock()
	return c.Client.Search(req)
}

// TestSlapdKilledMidFetch kills slapd (SIGKILL) between two pages of the
// user search. The error says the connection was lost during the search
// and to retry, not that the url's scheme may be wrong: the server had
// answered on that connection already.
func TestSlapdKilledMidFetch(t *testing.T) {
	pop := slapd.Population{Users: 1000}
	var ldif bytes.Buffer
	if err := pop.WriteLDIF(&ldif); err != nil {
		t.Fatal(err)
	}
	srv := slapd.Start(t, slapd.Options{LDIF: ldif.String()})
	src := slapdSource(t, srv, nil, func(l *Config) { l.PageSize = 100 })
	connect := src.dial
	k := &killer{srv: srv, n: 3, groupsDone: make(chan struct{})}
	src.dial = func(ctx context.Context) (goldap.Client, error) {
		conn, err := connect(ctx)
		if err != nil {
			return nil, err
		}
		return &killOnSearch{Client: conn, k: k}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap, err := src.Fetch(ctx)
	if err == nil {
		t.Fatalf("Fetch returned %d users from a killed server", len(snap.Users))
	}
	t.Logf("error: %v", err)
	for _, want := range []string{srv.URL, "search users", "the server closed the connection during the search", "retry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q", want)
		}
	}
	if strings.Contains(err.Error(), "scheme") {
		t.Errorf("error %q blames the url's scheme for a server that answered", err)
	}
}

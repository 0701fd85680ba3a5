package ldap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
)

// stallingProxy relays TCP connections to a server until stall is called;
// from then on it keeps the server's answers to itself, like a server that
// went quiet in the middle of a search. held is closed when it first holds
// an answer back: the client is then waiting for one that never comes.
type stallingProxy struct {
	addr    string
	stalled atomic.Bool
	held    chan struct{}
	once    sync.Once
}

func startStallingProxy(t *testing.T, target string) *stallingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{addr: l.Addr().String(), held: make(chan struct{})}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			track(client)
			track(server)
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(server, client)
			}()
			go func() {
				defer wg.Done()
				p.relayAnswers(client, server)
			}()
		}
	}()
	return p
}

func (p *stallingProxy) stall() { p.stalled.Store(true) }

// relayAnswers copies what the server sends to the client, or drops it
// once the proxy is stalled.
func (p *stallingProxy) relayAnswers(client, server net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if p.stalled.Load() {
				p.once.Do(func() { close(p.held) })
			} else if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stallOnSearch stalls the proxy just before the n-th search is sent.
type stallOnSearch struct {
	goldap.Client
	proxy    *stallingProxy
	n, count int
}

func (c *stallOnSearch) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	c.count++
	if c.count == c.n {
		c.proxy.stall()
	}
	return c.Client.Search(req)
}

// TestSlapdCancelWhileTheServerIsSilent cancels a fetch while it waits for
// a page that never comes. The operation timeout is ten minutes, so only
// the cancellation closing the connection can end the fetch: without it
// this test hangs until go test's own timeout.
func TestSlapdCancelWhileTheServerIsSilent(t *testing.T) {
	pop := slapd.Population{Users: 300}
	var ldif bytes.Buffer
	if err := pop.WriteLDIF(&ldif); err != nil {
		t.Fatal(err)
	}
	srv := slapd.Start(t, slapd.Options{LDIF: ldif.String()})
	proxy := startStallingProxy(t, strings.TrimPrefix(srv.URL, "ldap://"))
	src := slapdSource(t, srv, nil, func(l *Config) {
		l.URL, l.PageSize, l.Timeout = "ldap://"+proxy.addr, 100, 10*time.Minute
	})
	connect := src.dial
	src.dial = func(ctx context.Context) (goldap.Client, error) {
		conn, err := connect(ctx)
		if err != nil {
			return nil, err
		}
		return &stallOnSearch{Client: conn, proxy: proxy, n: 2}, nil // the users' second page
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-proxy.held:
			cancel()
		case <-ctx.Done():
		}
	}()
	snap, err := src.Fetch(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch error = %v, want context.Canceled", err)
	}
	if snap != nil {
		t.Errorf("Fetch returned a snapshot of %d users with its error", len(snap.Users))
	}
	if want := "ldap ldap://" + proxy.addr + ` (base "` + slapd.PeopleDN + `"): search users: context canceled`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestURLUserinfoNotInConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"unparsable", "ldap://cn=Directory Manager:secret@host", "ldap.url"},
		{"unparsable with a slash in the password", "ldap://admin:se/cret@host", "ldap.url"},
		{"wrong scheme", "http://admin:secret@host", `ldap.url: must be an ldap:// or ldaps:// URL with a host, got "http://xxxxx@host"`},
		{"no host", "ldap://admin:secret@/dc=x", "ldap.url: must be an ldap:// or ldaps:// URL with a host"},
		{"user in the url", "ldaps://admin:secret@host", `ldap.url: must not carry a user or password (got "ldaps://xxxxx@host")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newSource("corp", testConfig(tc.url, "dc=x", "dc=x"), zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "cret") || strings.Contains(err.Error(), ":se") {
				t.Errorf("error %q shows the url's password", err)
			}
		})
	}
}

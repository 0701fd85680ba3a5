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

// splitClient sends the user search down one connection and every other
// search, once wait is closed, down another.
type splitClient struct {
	goldap.Client // the other searches' connection
	users         goldap.Client
	wait          <-chan struct{}
}

func (c *splitClient) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	if req.BaseDN == slapd.PeopleDN {
		return c.users.Search(req)
	}
	select {
	case <-c.wait:
	case <-time.After(time.Minute):
		return nil, errors.New("test: the user search's answer was not held back within a minute")
	}
	return c.Client.Search(req)
}

func (c *splitClient) Close() error {
	c.users.Close()
	return c.Client.Close()
}

// TestSlapdGroupFailureStopsTheUserSearch sends the user search through a
// proxy that holds back every answer from then on, and the group search,
// once the proxy holds the user search's answer, straight to slapd, where
// it fails (no such base). Only searches running at once get that far,
// and the first failure must end the other: the fetch returns the group
// search's error without waiting out the ten-minute timeout of the silent
// one.
func TestSlapdGroupFailureStopsTheUserSearch(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})
	proxy := startStallingProxy(t, strings.TrimPrefix(srv.URL, "ldap://"))
	edit := func(l *Config) { l.Groups.BaseDN, l.Timeout = "ou=teams,dc=example,dc=com", 10*time.Minute }
	src := slapdSource(t, srv, nil, edit)
	proxied := slapdSource(t, srv, nil, func(l *Config) { edit(l); l.URL = "ldap://" + proxy.addr })
	src.dial = func(ctx context.Context) (goldap.Client, error) {
		users, err := proxied.connect(ctx)
		if err != nil {
			return nil, err
		}
		others, err := src.connect(ctx)
		if err != nil {
			users.Close()
			return nil, err
		}
		return &splitClient{Client: others, users: &stallOnSearch{Client: users, proxy: proxy, n: 1}, wait: proxy.held}, nil
	}

	done := make(chan error, 1)
	go func() {
		_, err := src.Fetch(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) || !strings.Contains(err.Error(), "search groups") {
			t.Fatalf("Fetch error = %v, want the group search's no such object", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Fetch still waits on the silent user search")
	}
}

package ldap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/internal/config"
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
	src := slapdSource(t, srv, nil, func(l *config.LDAP) {
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

// TestURLUserinfoNeverShown builds sources straight from a config the
// loader would refuse: a url holding a user and password. Neither errors
// nor logs may show the password.
func TestURLUserinfoNeverShown(t *testing.T) {
	const password = "secret"
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})
	withUserinfo := func(url string) string {
		scheme, rest, _ := strings.Cut(url, "://")
		return scheme + "://cn=admin:" + password + "@" + rest
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "ldap://" + closed.Addr().String()
	closed.Close()
	otherCA := slapd.OtherCAFile(t)

	tests := []struct {
		name  string
		edit  func(*config.LDAP)
		fetch bool
		// wantErr is a text the error must hold; empty: no error.
		wantErr string
	}{
		{
			name:  "a whole fetch, logged at debug level, with insecure_skip_verify",
			edit:  func(l *config.LDAP) { l.URL, l.InsecureSkipVerify = withUserinfo(srv.URL), true },
			fetch: true,
		},
		{
			name:    "connection refused",
			edit:    func(l *config.LDAP) { l.URL = withUserinfo(closedURL) },
			wantErr: "ldap " + closedURL + ": connect: ",
		},
		{
			name:    "wrong base DN",
			edit:    func(l *config.LDAP) { l.URL, l.Users.BaseDN = withUserinfo(srv.URL), "ou=nowhere,dc=example,dc=com" },
			fetch:   true,
			wantErr: "ldap " + srv.URL + ` (base "ou=nowhere,dc=example,dc=com"): search users: `,
		},
		{
			name:    "TLS with a CA that did not sign the server certificate",
			edit:    func(l *config.LDAP) { l.URL, l.CAFile = withUserinfo(srv.LDAPSURL), otherCA },
			wantErr: "ldap " + srv.LDAPSURL + ": TLS handshake: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			src := slapdSource(t, srv, zap.New(core), tc.edit)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if tc.fetch {
				_, err = src.Fetch(ctx)
			} else {
				err = src.Check(ctx)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), password):
				t.Errorf("error %q shows the url's password", err)
			}
			if tc.fetch && logs.FilterMessage("ldap search").Len() == 0 {
				t.Fatal("no search was logged; the ldapsearch command lines are not checked")
			}
			for _, e := range logs.All() {
				if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, password) {
					t.Errorf("log shows the url's password: %s", line)
				}
			}
		})
	}
}

func TestURLUserinfoNotInConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		ldap config.LDAP
		want string
	}{
		{"unparsable", config.LDAP{URL: "ldap://cn=Directory Manager:secret@host"}, "ldap.url"},
		{"unparsable with a slash in the password", config.LDAP{URL: "ldap://admin:se/cret@host"}, "ldap.url"},
		{"wrong scheme", config.LDAP{URL: "http://admin:secret@host"}, `ldap.url "http://host": the scheme must be`},
		{"no host", config.LDAP{URL: "ldap://admin:secret@/dc=x"}, "has no host"},
		{"StartTLS on ldaps", config.LDAP{URL: "ldaps://admin:secret@host", StartTLS: true}, "ldaps://host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.ldap.Users.BaseDN = "dc=x"
			_, err := newSource(config.Source{Name: "corp", LDAP: &tc.ldap}, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "cret") || strings.Contains(err.Error(), ":se") {
				t.Errorf("error %q shows the url's password", err)
			}
		})
	}
}

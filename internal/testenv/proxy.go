package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy a test can cut and restore, to play a
// database that goes away and comes back.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu       sync.Mutex
	listener net.Listener
	conns    map[net.Conn]bool
}

// NewProxy reserves a loopback port forwarding to target. It starts cut when
// up is false.
func NewProxy(t testing.TB, target string, up bool) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, addr: l.Addr().String(), conns: map[net.Conn]bool{}}
	if up {
		p.serve(l)
	} else {
		l.Close()
	}
	t.Cleanup(p.Cut)
	return p
}

// Addr is host:port of the proxy.
func (p *Proxy) Addr() string { return p.addr }

// Cut closes the listener and every connection through it.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		p.listener.Close()
		p.listener = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// Restore listens again on the same address.
func (p *Proxy) Restore() {
	p.t.Helper()
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy restore on %s: %v", p.addr, err)
	}
	p.serve(l)
}

func (p *Proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.listener = l
	p.mu.Unlock()
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				client.Close()
				continue
			}
			if !p.track(client, server) {
				return
			}
			go pipe(client, server)
			go pipe(server, client)
		}
	}()
}

func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Package ircdtest runs a real IRC server for tests: ngircd (Debian's
// package) on a free loopback port, with a temporary configuration, and a
// plain IRC client that speaks as a person. Tests that use it skip when
// ngircd is missing, and fail under LOGBOOK_REQUIRE_SERVICES=1.
package ircdtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/logbookhq/logbook/internal/testenv"
)

// ServerName is what the test server calls itself.
const ServerName = "irc.logbook.test"

// Options shape the test server.
type Options struct {
	// TLS makes the port TLS-only, with a certificate for 127.0.0.1 signed
	// by a CA written to Server.CAFile.
	TLS bool
	// Password, when set, is the server password clients must send.
	Password string
	// KeepPenalties keeps ngircd's flood control (per-command penalty
	// time). Off by default, so tests that send fast are not slowed; the
	// throttle test turns it on to show the bot stays within it.
	KeepPenalties bool
}

// Server is one ngircd process.
type Server struct {
	t      testing.TB
	Addr   string // 127.0.0.1:port
	CAFile string // the CA that signed the TLS certificate, when Options.TLS
	dir    string
	conf   string
	bin    string

	mu  sync.Mutex
	cmd *exec.Cmd
	out *bytes.Buffer
}

// Binary finds ngircd, or skips (fails under LOGBOOK_REQUIRE_SERVICES=1).
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("ngircd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/ngircd"); err == nil {
		return "/usr/sbin/ngircd"
	}
	testenv.Missing(t, "ngircd", "not on PATH or at /usr/sbin/ngircd (apt-get install ngircd)")
	return ""
}

// Start runs ngircd on a free loopback port until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	// ngircd drops to nobody when started as root; it must still read its
	// files and write its pid file.
	if err := os.Chmod(s.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(s.Addr)

	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534 // nobody, nogroup
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "[Global]\n\tName = %s\n\tInfo = Logbook test server\n", ServerName)
	fmt.Fprintf(&conf, "\tAdminInfo1 = Logbook tests\n\tAdminInfo2 = loopback\n\tAdminEMail = tests@logbook.invalid\n")
	fmt.Fprintf(&conf, "\tListen = 127.0.0.1\n\tMotdPhrase = \"Logbook test server\"\n")
	fmt.Fprintf(&conf, "\tServerUID = %d\n\tServerGID = %d\n\tPidFile = %s\n", uid, gid, filepath.Join(s.dir, "ngircd.pid"))
	if opts.Password != "" {
		fmt.Fprintf(&conf, "\tPassword = %s\n", opts.Password)
	}
	if opts.TLS {
		fmt.Fprintf(&conf, "\tPorts =\n")
	} else {
		fmt.Fprintf(&conf, "\tPorts = %s\n", port)
	}
	fmt.Fprintf(&conf, "[Limits]\n\tMaxNickLength = 30\n\tPingTimeout = 120\n\tPongTimeout = 20\n\tMaxConnectionsIP = 0\n")
	if !opts.KeepPenalties {
		fmt.Fprintf(&conf, "\tMaxPenaltyTime = 0\n")
	}
	fmt.Fprintf(&conf, "[Options]\n\tPAM = no\n\tIdent = no\n\tDNS = no\n\tMorePrivacy = no\n")
	if opts.TLS {
		cert, key, ca := s.writeCertificates()
		s.CAFile = ca
		fmt.Fprintf(&conf, "[SSL]\n\tCertFile = %s\n\tKeyFile = %s\n\tPorts = %s\n", cert, key, port)
	}
	s.conf = filepath.Join(s.dir, "ngircd.conf")
	if err := os.WriteFile(s.conf, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	out := &bytes.Buffer{}
	cmd := exec.Command(s.bin, "--nodaemon", "--config", s.conf)
	cmd.Stdout, cmd.Stderr = out, out
	// Listening again on the same port right after a stop can fail while
	// the old socket lingers; try for a few seconds.
	deadline := time.Now().Add(10 * time.Second)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start ngircd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			s.t.Fatalf("ngircd exited before listening on %s:\n%s", s.Addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			s.t.Fatalf("ngircd did not listen on %s within 10s:\n%s", s.Addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.out = cmd, out
	s.mu.Unlock()
}

// Stop ends the server (SIGTERM, then SIGKILL after 5s) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

// Restart stops the server and starts it again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// StartAgain starts a stopped server on the same port.
func (s *Server) StartAgain() {
	s.t.Helper()
	s.start()
}

// Log is what ngircd printed, for failure messages.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// writeCertificates makes a CA and a certificate for 127.0.0.1 signed by it.
func (s *Server) writeCertificates() (certFile, keyFile, caFile string) {
	s.t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Logbook test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		s.t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		s.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		s.t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		path := filepath.Join(s.dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o644); err != nil {
			s.t.Fatal(err)
		}
		return path
	}
	return write("cert.pem", "CERTIFICATE", der), write("key.pem", "PRIVATE KEY", keyDER), write("ca.pem", "CERTIFICATE", caDER)
}

// Line is one line the client received, parsed, with its size on the wire.
type Line struct {
	ircmsg.Message
	Raw  string
	Size int // bytes including CRLF
	At   time.Time
}

// Client is a plain IRC client over a net.Conn, speaking as a person. It
// answers PINGs itself; every other line goes to Lines.
type Client struct {
	t     testing.TB
	Nick  string
	conn  net.Conn
	Lines chan Line
	done  chan struct{}
}

// Dial connects and registers as nick, waiting for the welcome.
func Dial(t testing.TB, addr, nick string) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return register(t, conn, nick)
}

// DialTLS is Dial over TLS, trusting any certificate (the client is the
// test's; the bot is what checks certificates).
func DialTLS(t testing.TB, addr, nick string) *Client {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("dial %s over TLS: %v", addr, err)
	}
	return register(t, conn, nick)
}

func register(t testing.TB, conn net.Conn, nick string) *Client {
	t.Helper()
	c := &Client{t: t, Nick: nick, conn: conn, Lines: make(chan Line, 10000), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.Close)
	c.Send("NICK " + nick)
	c.Send("USER " + nick + " 0 * :Test person")
	c.Expect(10*time.Second, func(l Line) bool { return l.Command == "376" || l.Command == "422" })
	return c
}

func (c *Client) read() {
	defer close(c.done)
	r := bufio.NewReader(c.conn)
	for {
		raw, err := r.ReadString('\n')
		if err != nil {
			return
		}
		msg, err := ircmsg.ParseLine(raw)
		if err != nil {
			continue
		}
		if msg.Command == "PING" {
			fmt.Fprintf(c.conn, "PONG :%s\r\n", msg.Params[len(msg.Params)-1])
			continue
		}
		c.Lines <- Line{Message: msg, Raw: strings.TrimRight(raw, "\r\n"), Size: len(raw), At: time.Now()}
	}
}

// Send writes one raw line (CRLF added).
func (c *Client) Send(line string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", line); err != nil {
		c.t.Fatalf("%s: send %q: %v", c.Nick, line, err)
	}
}

// Say sends a PRIVMSG.
func (c *Client) Say(to, text string) { c.t.Helper(); c.Send("PRIVMSG " + to + " :" + text) }

// Join joins a channel and waits until the server confirms.
func (c *Client) Join(channel string) {
	c.t.Helper()
	c.Send("JOIN " + channel)
	c.Expect(10*time.Second, func(l Line) bool {
		return l.Command == "366" && len(l.Params) > 1 && strings.EqualFold(l.Params[1], channel)
	})
}

// Expect returns the first line matching ok within timeout, or fails the
// test; lines before it are dropped.
func (c *Client) Expect(timeout time.Duration, ok func(Line) bool) Line {
	c.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string // the last lines that did not match, for the failure
	for {
		select {
		case l := <-c.Lines:
			if ok(l) {
				return l
			}
			if seen = append(seen, l.At.Format("15:04:05.000 ")+l.Raw); len(seen) > 20 {
				seen = seen[1:]
			}
		case <-c.done:
			c.t.Fatalf("%s: connection closed while waiting; it got meanwhile:\n%s", c.Nick, strings.Join(seen, "\n"))
		case <-timer.C:
			c.t.Fatalf("%s: nothing expected arrived within %v; it got meanwhile (the last 20):\n%s", c.Nick, timeout, strings.Join(seen, "\n"))
		}
	}
}

// Privmsgs collects PRIVMSG lines from nick until n arrived or quiet passed
// with nothing new.
func (c *Client) Privmsgs(from string, n int, quiet time.Duration) []Line {
	var out []Line
	for len(out) < n {
		select {
		case l := <-c.Lines:
			if l.Command == "PRIVMSG" && strings.EqualFold(l.Nick(), from) {
				out = append(out, l)
			}
		case <-time.After(quiet):
			return out
		}
	}
	return out
}

// WaitFor waits until the channel lists nick as a member (the bot has
// joined), polling NAMES.
func (c *Client) WaitFor(channel, nick string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.Send("NAMES " + channel)
		l := c.Expect(5*time.Second, func(l Line) bool { return l.Command == "353" || l.Command == "366" })
		if l.Command == "353" {
			for _, n := range strings.Fields(l.Params[len(l.Params)-1]) {
				if strings.EqualFold(strings.TrimLeft(n, "@+%~&"), nick) {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%s did not join %s within %v", nick, channel, timeout)
}

// Close quits and closes the connection.
func (c *Client) Close() {
	fmt.Fprintf(c.conn, "QUIT :bye\r\n")
	c.conn.Close()
}

// Closed is closed once the server has closed the connection.
func (c *Client) Closed() <-chan struct{} { return c.done }

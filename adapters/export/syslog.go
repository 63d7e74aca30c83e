package export

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SDID names the structured-data element of each syslog message. 32473 is
// the private enterprise number RFC 5612 reserves for documentation and
// examples; Logbook has none of its own.
const SDID = "logbook@32473"

// syslogSink sends each record as one RFC 5424 message, framed by octet
// counting (RFC 6587 3.4.1; RFC 5425 over TLS), over one connection it
// keeps open.
//
// Plain syslog has no acknowledgement: a write that reached the kernel is
// all the sink can know, so that is what it counts as delivered. When the
// connection then breaks (the receiver restarted with lines unread in its
// socket, or died), the lines written in the ResendWindow before the
// break was seen may be lost, and Rewind says to send them again; a
// receiver drops the repeats by position. A goroutine reading the
// connection sees the receiver close it even while nothing is sent.
type syslogSink struct {
	cfg      Config
	now      func() time.Time
	tls      *tls.Config
	hostname string

	conn    net.Conn
	w       *bufio.Writer
	closed  chan struct{} // closed by the reader when the receiver hangs up
	readErr error         // why, once closed is closed
	// flushes are the batches written on this connection within the
	// window: when, and the first position.
	flushes  []flushMark
	rewindTo int64
	mu       sync.Mutex // guards readErr against the reader
}

type flushMark struct {
	at    time.Time
	first int64
}

func newSyslogSink(cfg Config, now func() time.Time) (*syslogSink, error) {
	s := &syslogSink{cfg: cfg, now: now, hostname: cfg.Hostname}
	if s.hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" || strings.IndexFunc(h, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			h = "-"
		}
		s.hostname = h
	}
	if cfg.TLS {
		c, err := clientTLS(cfg)
		if err != nil {
			return nil, err
		}
		s.tls = c
	}
	return s, nil
}

// clientTLS is the TLS client configuration of a syslog destination:
// TLS 1.2 at least, the system's roots or the CA file, and a client
// certificate when one is given.
func clientTLS(cfg Config) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(cfg.Addr)
	}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("export %s: the TLS CA file: %w", cfg.Name, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("export %s: the TLS CA file %s holds no PEM certificate", cfg.Name, cfg.TLSCAFile)
		}
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("export %s: the TLS client certificate: %w", cfg.Name, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func (s *syslogSink) connect(ctx context.Context) error {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if s.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: s.tls}).DialContext(ctx, "tcp", s.cfg.Addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", s.cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("export %s: connect to %s: %w", s.cfg.Name, s.cfg.Addr, err)
	}
	s.conn, s.w, s.closed, s.flushes = conn, bufio.NewWriterSize(conn, 64<<10), make(chan struct{}), nil
	s.mu.Lock()
	s.readErr = nil
	s.mu.Unlock()
	go s.watch(conn, s.closed)
	return nil
}

// watch reads the connection until the receiver closes it. A syslog
// receiver sends nothing, so anything read is ignored.
func (s *syslogSink) watch(conn net.Conn, closed chan struct{}) {
	buf := make([]byte, 512)
	for {
		if _, err := conn.Read(buf); err != nil {
			s.mu.Lock()
			s.readErr = err
			s.mu.Unlock()
			close(closed)
			return
		}
	}
}

// hungUp says why the receiver closed the connection, nil while it is open.
func (s *syslogSink) hungUp() error {
	select {
	case <-s.closed:
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("export %s: the receiver at %s closed the connection: %v", s.cfg.Name, s.cfg.Addr, s.readErr)
	default:
		return nil
	}
}

// Send implements Sink: every record framed and written, then flushed.
func (s *syslogSink) Send(ctx context.Context, records []Record) error {
	if s.conn != nil {
		if err := s.hungUp(); err != nil {
			return s.lost(err)
		}
	}
	if s.conn == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = s.conn.SetWriteDeadline(deadline)
	} else {
		_ = s.conn.SetWriteDeadline(s.now().Add(30 * time.Second))
	}
	for _, r := range records {
		msg := s.message(r)
		s.w.WriteString(strconv.Itoa(len(msg)))
		s.w.WriteByte(' ')
		if _, err := s.w.Write(msg); err != nil {
			return s.lost(fmt.Errorf("export %s: write to %s: %w", s.cfg.Name, s.cfg.Addr, err))
		}
	}
	if err := s.w.Flush(); err != nil {
		return s.lost(fmt.Errorf("export %s: write to %s: %w", s.cfg.Name, s.cfg.Addr, err))
	}
	now := s.now()
	s.flushes = append(s.flushes, flushMark{at: now, first: records[0].Position})
	s.prune(now)
	return nil
}

// Idle implements idler: a receiver that hung up while the log was quiet
// may not have read the last lines.
func (s *syslogSink) Idle(context.Context) error {
	if s.conn == nil {
		return nil
	}
	if err := s.hungUp(); err != nil {
		return s.lost(err)
	}
	s.prune(s.now())
	return nil
}

// prune forgets batches written more than the window ago.
func (s *syslogSink) prune(now time.Time) {
	i := 0
	for i < len(s.flushes) && now.Sub(s.flushes[i].at) > s.cfg.ResendWindow {
		i++
	}
	s.flushes = s.flushes[i:]
}

// lost closes a broken connection and marks what was written on it within
// the window to be sent again.
func (s *syslogSink) lost(err error) error {
	s.prune(s.now())
	if len(s.flushes) > 0 {
		s.rewindTo = s.flushes[0].first
	}
	s.conn.Close()
	s.conn, s.w, s.flushes = nil, nil, nil
	return err
}

// Rewind implements rewinder.
func (s *syslogSink) Rewind() int64 {
	p := s.rewindTo
	s.rewindTo = 0
	return p
}

// Close implements Sink.
func (s *syslogSink) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// severityInfo is each message's severity: the log records what happened,
// and its own events carry their importance.
const severityInfo = 6

// message is r as an RFC 5424 message: the header (its time the event's,
// MSGID its type when that fits), the structured data naming position and
// hashes, and the record's JSON as the message, UTF-8 with a BOM. A record
// over MaxMessage goes without its data.
func (s *syslogSink) message(r Record) []byte {
	msgID := r.Type
	if len(msgID) == 0 || len(msgID) > 32 || strings.IndexFunc(msgID, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
		msgID = "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s logbook %d %s [%s", s.cfg.Facility*8+severityInfo, r.RecordedAt, s.hostname, os.Getpid(), msgID, SDID)
	for _, p := range [][2]string{{"position", strconv.FormatInt(r.Position, 10)}, {"hash", r.Hash}, {"prev_hash", r.PrevHash},
		{"id", r.ID}, {"stream", r.Stream}, {"version", strconv.FormatInt(r.Version, 10)}, {"type", r.Type}} {
		b.WriteString(" " + p[0] + `="`)
		b.WriteString(sdEscaper.Replace(p[1]))
		b.WriteByte('"')
	}
	b.WriteString("] \ufeff")
	line := r.MarshalLine()
	if b.Len()+len(line)-1 > s.cfg.MaxMessage {
		line = r.withoutData().MarshalLine()
	}
	b.Write(line[:len(line)-1])
	return []byte(b.String())
}

// sdEscaper escapes a PARAM-VALUE (RFC 5424 6.3.3).
var sdEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

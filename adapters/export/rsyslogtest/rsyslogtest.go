// Package rsyslogtest runs Debian's rsyslogd as a real syslog receiver for
// one test: its own configuration on a free loopback port (imtcp, plain or
// TLS with the gtls driver), in the foreground, with its own pid file and
// work directory, writing what it receives to a file in the test's
// directory. No system service is touched. Without rsyslogd the test
// skips, or fails under LOGBOOK_REQUIRE_SERVICES=1.
package rsyslogtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/internal/testenv"
)

// Server is one rsyslogd.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	conf string
	// Addr is where it listens; Out the file it writes.
	Addr   string
	Out    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// TLSFiles are a receiver's CA, certificate and key (PEM files).
type TLSFiles struct{ CA, Cert, Key string }

// Start runs rsyslogd, with TLS when files is not nil, until the test ends.
func Start(t testing.TB, files *TLSFiles) *Server {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/rsyslogd"); statErr != nil {
			testenv.Missing(t, "rsyslog", "rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)")
		}
		bin = "/usr/sbin/rsyslogd"
	}
	if files != nil {
		if matches, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(matches) == 0 {
			testenv.Missing(t, "rsyslog's TLS driver", "lmnsd_gtls.so is not installed (apt-get install rsyslog-gnutls)")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), Addr: l.Addr().String()}
	l.Close()
	s.Out = filepath.Join(s.dir, "received.log")
	_, port, _ := net.SplitHostPort(s.Addr)
	work := filepath.Join(s.dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "global(workDirectory=%q maxMessageSize=\"256k\"", work)
	if files != nil {
		fmt.Fprintf(&conf, " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			files.CA, files.Cert, files.Key)
	}
	conf.WriteString(")\n")
	// At a stop, it writes what it has taken in before it exits.
	conf.WriteString("main_queue(queue.timeoutShutdown=\"10000\")\n")
	if files != nil {
		conf.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n")
	} else {
		conf.WriteString("module(load=\"imtcp\")\n")
	}
	fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=%q)\n", port)
	conf.WriteString("template(name=\"logbook\" type=\"string\" string=\"%structured-data% %msg%\\n\")\n")
	fmt.Fprintf(&conf, "action(type=\"omfile\" file=%q template=\"logbook\")\n", s.Out)
	s.conf = filepath.Join(s.dir, "rsyslog.conf")
	if err := os.WriteFile(s.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	logFile, err := os.OpenFile(filepath.Join(s.dir, "rsyslogd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, "-n", "-f", s.conf, "-i", filepath.Join(s.dir, "rsyslogd.pid"))
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}(s.cmd, s.exited)
	testenv.Eventually(s.t, "rsyslogd listening on "+s.Addr, func() bool {
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "rsyslogd.log"))
			s.t.Fatalf("rsyslogd exited at start: %s", log)
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// Stop ends rsyslogd as a service manager would (SIGTERM) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Restart stops rsyslogd and starts it again on the same port.
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

var (
	sdPosition = regexp.MustCompile(` position="([0-9]+)"`)
	sdHash     = regexp.MustCompile(` hash="([0-9a-f]+)"`)
)

// Received parses what rsyslogd wrote, whole lines only: each line's
// structured data and the record after it, which must agree on position
// and hash.
func (s *Server) Received() []export.Record {
	s.t.Helper()
	data, err := os.ReadFile(s.Out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []export.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		sd, msg, ok := strings.Cut(line, "] ")
		if !ok || !strings.HasPrefix(sd, "["+export.SDID+" ") {
			s.t.Fatalf("line %q has no %s structured data", line, export.SDID)
		}
		msg = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(msg), "\ufeff"))
		var rec export.Record
		if err := json.Unmarshal([]byte(msg), &rec); err != nil {
			s.t.Fatalf("message %q: %v", msg, err)
		}
		pos, hash := sdPosition.FindStringSubmatch(sd), sdHash.FindStringSubmatch(sd)
		if pos == nil || hash == nil || pos[1] != fmt.Sprint(rec.Position) || hash[1] != rec.Hash {
			s.t.Fatalf("structured data %q does not name the record's position %d and hash %s", sd, rec.Position, rec.Hash)
		}
		out = append(out, rec)
	}
	return out
}

// WriteTLSFiles makes a CA and a certificate for localhost and 127.0.0.1
// signed by it, in the test's directory.
func WriteTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "logbook test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	files := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	for path, block := range map[string]*pem.Block{files.CA: {Type: "CERTIFICATE", Bytes: caDER}, files.Cert: {Type: "CERTIFICATE", Bytes: der}, files.Key: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

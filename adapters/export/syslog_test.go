package export_test

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
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/internal/testenv"
)

// rsyslogd is Debian's rsyslog daemon run by one test: its own config on a
// free loopback port, in the foreground, with its own pid file and work
// directory, writing what it receives to a file. No system service.
type rsyslogd struct {
	t      *testing.T
	bin    string
	dir    string
	conf   string
	Addr   string
	Out    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// tlsFiles are the receiver's CA, certificate and key (PEM files).
type tlsFiles struct{ CA, Cert, Key string }

func startRsyslog(t *testing.T, tlsf *tlsFiles) *rsyslogd {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/rsyslogd"); statErr != nil {
			testenv.Missing(t, "rsyslog", "rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)")
		}
		bin = "/usr/sbin/rsyslogd"
	}
	if tlsf != nil {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
			if matches, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(matches) == 0 {
				testenv.Missing(t, "rsyslog's TLS driver", "lmnsd_gtls.so is not installed (apt-get install rsyslog-gnutls)")
			}
		}
	}
	r := &rsyslogd{t: t, bin: bin, dir: t.TempDir(), Addr: freeAddr(t)}
	r.Out = filepath.Join(r.dir, "received.log")
	_, port, _ := net.SplitHostPort(r.Addr)
	work := filepath.Join(r.dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "global(workDirectory=%q maxMessageSize=\"256k\"", work)
	if tlsf != nil {
		fmt.Fprintf(&conf, " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			tlsf.CA, tlsf.Cert, tlsf.Key)
	}
	conf.WriteString(")\n")
	conf.WriteString("main_queue(queue.timeoutShutdown=\"10000\")\n")
	if tlsf != nil {
		conf.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n")
	} else {
		conf.WriteString("module(load=\"imtcp\")\n")
	}
	fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=%q)\n", port)
	conf.WriteString("template(name=\"logbook\" type=\"string\" string=\"%structured-data% %msg%\\n\")\n")
	fmt.Fprintf(&conf, "action(type=\"omfile\" file=%q template=\"logbook\")\n", r.Out)
	r.conf = filepath.Join(r.dir, "rsyslog.conf")
	if err := os.WriteFile(r.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslogd) start() {
	r.t.Helper()
	logFile, err := os.OpenFile(filepath.Join(r.dir, "rsyslogd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}(r.cmd, r.exited)
	testenv.Eventually(r.t, "rsyslogd listening on "+r.Addr, func() bool {
		select {
		case <-r.exited:
			log, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.log"))
			r.t.Fatalf("rsyslogd exited at start: %s", log)
		default:
		}
		c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop ends rsyslogd as a service manager would (SIGTERM), and waits: it
// writes what it has taken in before it exits.
func (r *rsyslogd) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

func (r *rsyslogd) restart() {
	r.stop()
	r.start()
}

var (
	sdPosition = regexp.MustCompile(` position="([0-9]+)"`)
	sdHash     = regexp.MustCompile(` hash="([0-9a-f]+)"`)
)

// received parses what rsyslogd wrote: each line's structured data and
// the record after it, which must agree on position and hash.
func (r *rsyslogd) received() []export.Record {
	r.t.Helper()
	data, err := os.ReadFile(r.Out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	// Only whole lines: rsyslogd may be half way through writing the last.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []export.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		sd, msg, ok := strings.Cut(line, "] ")
		if !ok || !strings.HasPrefix(sd, "["+export.SDID+" ") {
			r.t.Fatalf("line %q has no %s structured data", line, export.SDID)
		}
		msg = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(msg), "\ufeff"))
		var rec export.Record
		if err := json.Unmarshal([]byte(msg), &rec); err != nil {
			r.t.Fatalf("message %q: %v", msg, err)
		}
		pos, hash := sdPosition.FindStringSubmatch(sd), sdHash.FindStringSubmatch(sd)
		if pos == nil || hash == nil || pos[1] != fmt.Sprint(rec.Position) || hash[1] != rec.Hash {
			r.t.Fatalf("structured data %q does not name the record's position %d and hash %s", sd, rec.Position, rec.Hash)
		}
		out = append(out, rec)
	}
	return out
}

// rsyslogd restarted mid-stream: the exporter reconnects, sends again what
// the old connection may have lost, and the receiver ends with every
// position, chained.
func TestSyslogToRsyslogSurvivesItsRestartMidStream(t *testing.T) {
	t.Parallel()
	rs := startRsyslog(t, nil)
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	cfg := export.Config{Name: "siem", Kind: export.KindSyslog, Addr: rs.Addr, Facility: 13, Hostname: "logbook-test", MaxMessage: 64 << 10, ResendWindow: 10 * time.Second, Batch: 50}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})

	appendEvents(t, store, 300)
	testenv.Eventually(t, "rsyslogd has some of the first 300", func() bool { return len(rs.received()) > 0 })
	// Restart while events keep coming.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			appendEvents(t, store, 20)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	rs.restart()
	<-done
	rs.restart()
	appendEvents(t, store, 100)
	const total = 300 + 400 + 100
	testenv.EventuallyWithin(t, 60*time.Second, "every position at rsyslogd", func() bool { return hasThrough(rs.received(), total) })
	checkStream(t, rs.received(), total)
	testenv.Eventually(t, "the cursor at the head", func() bool { return status(t, store, cursors, cfg).Position == total })
}

// An event too big for the receiver's messages goes without its data,
// named by digest, and still links.
func TestSyslogSendsAnEventOverMaxMessageWithoutItsData(t *testing.T) {
	t.Parallel()
	rs := startRsyslog(t, nil)
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 2)
	big := fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 8000))
	appendRaw(t, store, big)
	appendEvents(t, store, 1)
	cfg := export.Config{Name: "small", Kind: export.KindSyslog, Addr: rs.Addr, Facility: 16, MaxMessage: 4096, ResendWindow: time.Second, Batch: 10}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "four at rsyslogd", func() bool { return hasThrough(rs.received(), 4) })
	got, err := export.CheckContinuous(rs.received(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := got[2]; !r.DataOmitted || r.DataBytes != len(big) || r.Data != nil || r.DataSHA256 == "" {
		t.Fatalf("the big event's record = %+v, want its data omitted and named", r)
	}
	if got[3].DataOmitted {
		t.Fatal("a small event's data was omitted")
	}
}

// TLS (RFC 5425) to rsyslogd's gtls driver, the server checked against
// the test's CA.
func TestSyslogOverTLSToRsyslog(t *testing.T) {
	t.Parallel()
	files := writeTLSFiles(t)
	rs := startRsyslog(t, &files)
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 150)
	cfg := export.Config{Name: "tls", Kind: export.KindSyslog, Addr: rs.Addr, TLS: true, TLSCAFile: files.CA, TLSServerName: "localhost",
		Facility: 13, MaxMessage: 64 << 10, ResendWindow: 10 * time.Second, Batch: 40}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.EventuallyWithin(t, 30*time.Second, "every position over TLS", func() bool { return hasThrough(rs.received(), 150) })
	rs.restart()
	appendEvents(t, store, 50)
	testenv.EventuallyWithin(t, 30*time.Second, "every position after a restart", func() bool { return hasThrough(rs.received(), 200) })
	checkStream(t, rs.received(), 200)

	// A receiver whose certificate the CA did not sign is refused.
	other := writeTLSFiles(t)
	bad := cfg
	bad.Name, bad.TLSCAFile = "untrusted", other.CA
	start(t, bad, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "the refusal in the status", func() bool {
		return strings.Contains(status(t, store, cursors, bad).LastError, "certificate")
	})
	if st := status(t, store, cursors, bad); st.Position != 0 {
		t.Fatalf("an untrusted receiver was sent up to %d", st.Position)
	}
}

// writeTLSFiles makes a CA and a certificate for localhost and 127.0.0.1
// signed by it.
func writeTLSFiles(t *testing.T) tlsFiles {
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
	files := tlsFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	for path, block := range map[string]*pem.Block{files.CA: {Type: "CERTIFICATE", Bytes: caDER}, files.Cert: {Type: "CERTIFICATE", Bytes: der}, files.Key: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// A receiver that hangs up with lines unread (a restart, a crash) loses
// them though the sender's writes succeeded: the exporter sees the hang-up
// while the log is quiet, goes back over what it wrote in the window, and
// the receiver ends with every position.
func TestSyslogSendsAgainWhatAReceiverLostWhenItHungUp(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var frames [][]byte
	got := func() []export.Record {
		mu.Lock()
		defer mu.Unlock()
		var all []byte
		for _, f := range frames {
			all = append(all, f...)
		}
		return syslogRecords(t, all)
	}
	go func() {
		for conn := 0; ; conn++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(c)
			for n := 0; conn > 0 || n < 10; n++ {
				size, err := r.ReadString(' ')
				if err != nil {
					break
				}
				frame := make([]byte, len(size))
				copy(frame, size)
				body := make([]byte, atoi(strings.TrimSpace(size)))
				if _, err := io.ReadFull(r, body); err != nil {
					break
				}
				mu.Lock()
				frames = append(frames, append(frame, body...))
				mu.Unlock()
			}
			// The first connection is dropped after ten lines, the rest of
			// the batch unread in its socket.
			c.Close()
		}
	}()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 50)
	cfg := export.Config{Name: "lossy", Kind: export.KindSyslog, Addr: l.Addr().String(), Facility: 13, MaxMessage: 64 << 10, ResendWindow: time.Minute, Batch: 50}
	start(t, cfg, export.Options{Store: store, Cursors: cursors, SafetyNet: 20 * time.Millisecond})
	testenv.EventuallyWithin(t, 30*time.Second, "every position received", func() bool { return hasThrough(got(), 50) })
	checkStream(t, got(), 50)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

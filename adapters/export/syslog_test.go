package export_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/export/rsyslogtest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// rsyslogd restarted mid-stream: the exporter reconnects, sends again what
// the old connection may have lost, and the receiver ends with every
// position, chained.
func TestSyslogToRsyslogSurvivesItsRestartMidStream(t *testing.T) {
	t.Parallel()
	rs := rsyslogtest.Start(t, nil)
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	cfg := export.Config{Name: "siem", Kind: export.KindSyslog, Addr: rs.Addr, Facility: 13, Hostname: "logbook-test", MaxMessage: 64 << 10, ResendWindow: 10 * time.Second, Batch: 50}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})

	appendEvents(t, store, 300)
	testenv.Eventually(t, "rsyslogd has some of the first 300", func() bool { return len(rs.Received()) > 0 })
	// Restart while events keep coming.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			appendEvents(t, store, 20)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	rs.Restart()
	<-done
	rs.Restart()
	appendEvents(t, store, 100)
	const total = 300 + 400 + 100
	testenv.EventuallyWithin(t, 60*time.Second, "every position at rsyslogd", func() bool { return hasThrough(rs.Received(), total) })
	checkStream(t, rs.Received(), total)
	testenv.Eventually(t, "the cursor at the head", func() bool { return status(t, store, cursors, cfg).Position == total })
}

// An event too big for the receiver's messages goes without its data,
// named by digest, and still links.
func TestSyslogSendsAnEventOverMaxMessageWithoutItsData(t *testing.T) {
	t.Parallel()
	rs := rsyslogtest.Start(t, nil)
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 2)
	big := fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 8000))
	appendRaw(t, store, big)
	appendEvents(t, store, 1)
	cfg := export.Config{Name: "small", Kind: export.KindSyslog, Addr: rs.Addr, Facility: 16, MaxMessage: 4096, ResendWindow: time.Second, Batch: 10}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.Eventually(t, "four at rsyslogd", func() bool { return hasThrough(rs.Received(), 4) })
	got, err := export.CheckContinuous(rs.Received(), 1)
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
	files := rsyslogtest.WriteTLSFiles(t)
	rs := rsyslogtest.Start(t, &files)
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 150)
	cfg := export.Config{Name: "tls", Kind: export.KindSyslog, Addr: rs.Addr, TLS: true, TLSCAFile: files.CA, TLSServerName: "localhost",
		Facility: 13, MaxMessage: 64 << 10, ResendWindow: 10 * time.Second, Batch: 40}
	start(t, cfg, export.Options{Store: store, Cursors: cursors})
	testenv.EventuallyWithin(t, 30*time.Second, "every position over TLS", func() bool { return hasThrough(rs.Received(), 150) })
	rs.Restart()
	appendEvents(t, store, 50)
	testenv.EventuallyWithin(t, 30*time.Second, "every position after a restart", func() bool { return hasThrough(rs.Received(), 200) })
	checkStream(t, rs.Received(), 200)

	// A receiver whose certificate the CA did not sign is refused.
	other := rsyslogtest.WriteTLSFiles(t)
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

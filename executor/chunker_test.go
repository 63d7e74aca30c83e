package executor_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
)

type chunkLog struct {
	mu        sync.Mutex
	chunks    []run.OutputChunk
	truncated []run.OutputTruncated
}

func (l *chunkLog) emit(c run.OutputChunk) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.Bytes = append([]byte(nil), c.Bytes...) // lent only for the call
	l.chunks = append(l.chunks, c)
	return nil
}

func (l *chunkLog) trunc(t run.OutputTruncated) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.truncated = append(l.truncated, t)
	return nil
}

func (l *chunkLog) bytesOf(s run.OutputStream) []byte {
	var b []byte
	for _, c := range l.chunks {
		if c.Stream == s {
			b = append(b, c.Bytes...)
		}
	}
	return b
}

func TestChunkerCoalescesOrdersAndCaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    executor.ChunkerConfig
		writes []struct {
			s run.OutputStream
			b string
		}
		wantChunks []string
		wantTrunc  bool
	}{
		{
			name: "small writes on one stream become one chunk",
			cfg:  executor.ChunkerConfig{Interval: time.Hour},
			writes: []struct {
				s run.OutputStream
				b string
			}{{run.Stdout, "a"}, {run.Stdout, "b"}, {run.Stdout, "c"}},
			wantChunks: []string{"stdout:abc"},
		},
		{
			name: "a change of stream starts a new chunk",
			cfg:  executor.ChunkerConfig{Interval: time.Hour},
			writes: []struct {
				s run.OutputStream
				b string
			}{{run.Stdout, "a"}, {run.Stderr, "b"}, {run.Stdout, "c"}},
			wantChunks: []string{"stdout:a", "stderr:b", "stdout:c"},
		},
		{
			name: "a full chunk is flushed at the chunk size",
			cfg:  executor.ChunkerConfig{ChunkBytes: 4, Interval: time.Hour},
			writes: []struct {
				s run.OutputStream
				b string
			}{{run.Stdout, "abcdefghij"}},
			wantChunks: []string{"stdout:abcd", "stdout:efgh", "stdout:ij"},
		},
		{
			name: "output over the cap is cut and truncation is recorded once",
			cfg:  executor.ChunkerConfig{LimitBytes: 5, Interval: time.Hour},
			writes: []struct {
				s run.OutputStream
				b string
			}{{run.Stdout, "abc"}, {run.Stderr, "defg"}, {run.Stdout, "hij"}},
			wantChunks: []string{"stdout:abc", "stderr:de"},
			wantTrunc:  true,
		},
		{
			name: "binary and invalid UTF-8 are kept exactly",
			cfg:  executor.ChunkerConfig{Interval: time.Hour},
			writes: []struct {
				s run.OutputStream
				b string
			}{{run.Stdout, "\x00\xff\xfe\xc3"}},
			wantChunks: []string{"stdout:\x00\xff\xfe\xc3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var l chunkLog
			c := executor.NewChunker(tt.cfg, l.emit, l.trunc)
			for _, w := range tt.writes {
				if n, err := c.Writer(w.s).Write([]byte(w.b)); err != nil || n != len(w.b) {
					t.Fatalf("Write = %d, %v; want %d, nil (writes never fail or block the command)", n, err, len(w.b))
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, ch := range l.chunks {
				if ch.Seq != int64(i) {
					t.Errorf("chunk %d has seq %d", i, ch.Seq)
				}
				got = append(got, string(ch.Stream)+":"+string(ch.Bytes))
			}
			if len(got) != len(tt.wantChunks) {
				t.Fatalf("chunks = %q, want %q", got, tt.wantChunks)
			}
			for i := range got {
				if got[i] != tt.wantChunks[i] {
					t.Fatalf("chunks = %q, want %q", got, tt.wantChunks)
				}
			}
			if (len(l.truncated) == 1) != tt.wantTrunc || len(l.truncated) > 1 {
				t.Fatalf("truncated = %+v, want once: %v", l.truncated, tt.wantTrunc)
			}
			if tt.wantTrunc && l.truncated[0].AfterSeq != int64(len(l.chunks)-1) {
				t.Fatalf("truncated after seq %d, want %d", l.truncated[0].AfterSeq, len(l.chunks)-1)
			}
		})
	}
}

// Given a quiet stream with buffered bytes, when the interval passes, then
// they are flushed as one chunk, and not a moment before.
func TestChunkerFlushesAfterTheInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var l chunkLog
		c := executor.NewChunker(executor.ChunkerConfig{}, l.emit, l.trunc) // the default 50 ms
		defer c.Close()
		start := time.Now()
		_, _ = c.Writer(run.Stdout).Write([]byte("tick"))
		time.Sleep(50*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		l.mu.Lock()
		early := len(l.chunks)
		l.mu.Unlock()
		if early != 0 {
			t.Fatalf("%d chunks before the interval passed", early)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.chunks) != 1 || string(l.chunks[0].Bytes) != "tick" || !l.chunks[0].At.Equal(start.Add(50*time.Millisecond).UTC()) {
			t.Fatalf("chunks = %+v, want one chunk of the buffered bytes at 50 ms", l.chunks)
		}
	})
}

func TestChunkerKeepsEveryByteFromConcurrentWriters(t *testing.T) {
	t.Parallel()
	var l chunkLog
	c := executor.NewChunker(executor.ChunkerConfig{ChunkBytes: 1000, Interval: time.Millisecond}, l.emit, l.trunc)
	var wg sync.WaitGroup
	for _, s := range []run.OutputStream{run.Stdout, run.Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				_, _ = c.Writer(s).Write([]byte{byte(i), byte(i >> 8)})
			}
		}()
	}
	wg.Wait()
	_ = c.Close()
	var want []byte
	for i := range 2000 {
		want = append(want, byte(i), byte(i>>8))
	}
	for _, s := range []run.OutputStream{run.Stdout, run.Stderr} {
		if got := l.bytesOf(s); !bytes.Equal(got, want) {
			t.Fatalf("%s: got %d bytes, want the %d written, in order", s, len(got), len(want))
		}
	}
}

func TestChunkerKeepsTheHeadOfStdoutForTheParser(t *testing.T) {
	t.Parallel()
	var l chunkLog
	c := executor.NewChunker(executor.ChunkerConfig{ResultMax: 4, Interval: time.Hour}, l.emit, l.trunc)
	_, _ = c.Writer(run.Stdout).Write([]byte("ab"))
	_, _ = c.Writer(run.Stderr).Write([]byte("zz"))
	head, complete := c.Stdout()
	if string(head) != "ab" || !complete {
		t.Fatalf("head = %q complete=%v, want \"ab\" true", head, complete)
	}
	_, _ = c.Writer(run.Stdout).Write([]byte("cdef"))
	head, complete = c.Stdout()
	if string(head) != "abcd" || complete {
		t.Fatalf("head = %q complete=%v, want \"abcd\" false", head, complete)
	}
}

func TestChunkerNeverFailsTheCommandsWritesWhenRecordingFails(t *testing.T) {
	t.Parallel()
	boom := errors.New("bus down")
	c := executor.NewChunker(executor.ChunkerConfig{ChunkBytes: 2, Interval: time.Hour},
		func(run.OutputChunk) error { return boom },
		func(run.OutputTruncated) error { return nil })
	for range 3 {
		if n, err := c.Writer(run.Stdout).Write([]byte("abcd")); n != 4 || err != nil {
			t.Fatalf("Write = %d, %v; a failing recorder must not block or fail the command", n, err)
		}
	}
	if err := c.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want the recording error", err)
	}
}

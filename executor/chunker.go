package executor

import (
	"io"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain/run"
)

// ChunkerConfig tunes output coalescing. The zero value of a field means its
// default.
type ChunkerConfig struct {
	ChunkBytes int           // flush when this many bytes are buffered (16 KiB)
	Interval   time.Duration // flush this long after the first buffered byte (50 ms)
	LimitBytes int64         // keep at most this much output per run; <= 0 means no cap
	ResultMax  int           // keep this much stdout for the Cog parser (run.MaxResultBytes)
}

// Chunker turns a command's stdout and stderr into OutputChunk events:
// coalesced (about ChunkBytes or Interval, whichever first), numbered by seq
// in the order the bytes arrived, byte-exact, and capped at LimitBytes with
// one OutputTruncated. A change of stream flushes, so interleaving is kept.
// It is safe for concurrent writers.
type Chunker struct {
	cfg  ChunkerConfig
	emit func(run.OutputChunk) error
	trun func(run.OutputTruncated) error

	mu        sync.Mutex
	buf       []byte
	stream    run.OutputStream
	seq       int64
	total     int64 // bytes kept so far (emitted or buffered)
	truncated bool
	closed    bool
	timer     *time.Timer
	err       error // the first emit error; later output is dropped, Close reports it

	result    []byte // the head of stdout, for ParseCogOutput
	stdoutLen int64  // every stdout byte seen, kept or not
}

// NewChunker returns a chunker that hands each chunk to emit and the
// truncation notice to truncated. A chunk's Bytes are valid only during the
// emit call.
func NewChunker(cfg ChunkerConfig, emit func(run.OutputChunk) error, truncated func(run.OutputTruncated) error) *Chunker {
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = 16 << 10
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.ResultMax <= 0 {
		cfg.ResultMax = run.MaxResultBytes
	}
	return &Chunker{cfg: cfg, emit: emit, trun: truncated, buf: make([]byte, 0, cfg.ChunkBytes)}
}

// Writer returns an io.Writer for one stream.
func (c *Chunker) Writer(s run.OutputStream) io.Writer { return chunkWriter{c, s} }

type chunkWriter struct {
	c *Chunker
	s run.OutputStream
}

func (w chunkWriter) Write(p []byte) (int, error) { return w.c.write(w.s, p) }

func (c *Chunker) write(s run.OutputStream, p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	if c.err != nil {
		return n, nil // recording failed (Close reports it); never block the command's output
	}
	if s == run.Stdout {
		c.stdoutLen += int64(n)
		if room := c.cfg.ResultMax - len(c.result); room > 0 {
			c.result = append(c.result, p[:min(room, len(p))]...)
		}
	}
	if c.truncated || c.closed {
		return n, nil // dropped; the command keeps running and is not blocked
	}
	if c.cfg.LimitBytes > 0 {
		if room := c.cfg.LimitBytes - c.total; int64(len(p)) > room {
			p = p[:room]
			c.truncated = true
		}
	}
	if len(c.buf) > 0 && s != c.stream {
		c.flushLocked()
	}
	c.stream = s
	for len(p) > 0 && c.err == nil {
		take := min(c.cfg.ChunkBytes-len(c.buf), len(p))
		if len(c.buf) == 0 {
			c.armLocked()
		}
		c.buf = append(c.buf, p[:take]...)
		c.total += int64(take)
		p = p[take:]
		if len(c.buf) >= c.cfg.ChunkBytes {
			c.flushLocked()
		}
	}
	if c.truncated && c.err == nil {
		c.flushLocked()
		if err := c.trun(run.OutputTruncated{LimitBytes: c.cfg.LimitBytes, AfterSeq: c.seq - 1}); err != nil {
			c.err = err
		}
	}
	return n, nil
}

func (c *Chunker) armLocked() {
	if c.timer == nil {
		c.timer = time.AfterFunc(c.cfg.Interval, c.tick)
		return
	}
	c.timer.Reset(c.cfg.Interval)
}

func (c *Chunker) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.flushLocked()
	}
}

func (c *Chunker) flushLocked() {
	if len(c.buf) == 0 || c.err != nil {
		return
	}
	// emit encodes the chunk before returning and keeps no reference to its
	// bytes, so the buffer is lent, not copied.
	chunk := run.OutputChunk{Seq: c.seq, Stream: c.stream, Bytes: c.buf, At: time.Now().UTC()}
	c.buf = c.buf[:0]
	if c.timer != nil {
		c.timer.Stop()
	}
	if err := c.emit(chunk); err != nil {
		c.err = err
		return
	}
	c.seq++
}

// Close flushes what is buffered and stops the timer. Writes after Close are
// dropped. It returns the first emit error, if any.
func (c *Chunker) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.flushLocked()
		c.closed = true
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	return c.err
}

// Stdout returns the head of stdout kept for the Cog parser and whether it
// is all of stdout.
func (c *Chunker) Stdout() (head []byte, complete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result, int64(len(c.result)) == c.stdoutLen
}

// Truncated reports whether output went over the cap.
func (c *Chunker) Truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.truncated
}

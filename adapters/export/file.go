package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The file sink writes one record a line to active-<start>.jsonl in its
// directory (start: when the file was begun, unix microseconds), and
// fsyncs after each batch. Rotation syncs and closes the active file and
// renames it to events-<first>-<last>.jsonl (its first and last
// positions, zero-padded so names sort in log order), then syncs the
// directory: a completed file appears whole under its final name, and a
// shipper reads only events-*.jsonl. On open, a line torn by a crash is
// cut off, and the sink says which position it holds, so a restart goes
// on from there without a gap or a repeat.
type fileSink struct {
	cfg Config
	now func() time.Time

	f       *os.File // the active file; nil until the first line, or after a failure
	path    string
	started time.Time
	size    int64
	first   int64 // positions in the active file (0: empty)
	last    int64
	held    int64 // the last position synced to any file
}

const (
	activePrefix = "active-"
	eventsPrefix = "events-"
	jsonlSuffix  = ".jsonl"
)

func openFileSink(cfg Config, now func() time.Time) (*fileSink, error) {
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("export %s: the directory: %w", cfg.Name, err)
	}
	s := &fileSink{cfg: cfg, now: now}
	return s, s.recover()
}

// recover finds what the directory holds: every active file but the
// newest is completed (there is one unless a rotation was cut short),
// the newest is repaired and kept open, and held is the last position.
func (s *fileSink) recover() error {
	s.f, s.path, s.first, s.last, s.size = nil, "", 0, 0, 0
	actives, err := filepath.Glob(filepath.Join(s.cfg.Dir, activePrefix+"*"+jsonlSuffix))
	if err != nil {
		return err
	}
	slices.SortFunc(actives, func(a, b string) int { return startOf(a).Compare(startOf(b)) })
	for i, path := range actives {
		if err := s.adopt(path); err != nil {
			return err
		}
		if i < len(actives)-1 {
			if err := s.rotate(); err != nil {
				return err
			}
		}
	}
	completed, err := filepath.Glob(filepath.Join(s.cfg.Dir, eventsPrefix+"*"+jsonlSuffix))
	if err != nil {
		return err
	}
	for _, path := range completed {
		_, last, ok := positionsOf(path)
		if ok {
			s.held = max(s.held, last)
		}
	}
	s.held = max(s.held, s.last)
	return nil
}

// startOf is an active file's start, from its name.
func startOf(path string) time.Time {
	us, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), activePrefix), jsonlSuffix), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// positionsOf reads a completed file's positions from its name.
func positionsOf(path string) (first, last int64, ok bool) {
	f, l, found := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), eventsPrefix), jsonlSuffix), "-")
	first, err1 := strconv.ParseInt(f, 10, 64)
	last, err2 := strconv.ParseInt(l, 10, 64)
	return first, last, found && err1 == nil && err2 == nil
}

// adopt opens an active file for appending after cutting off a torn last
// line, and reads its first and last positions.
func (s *fileSink) adopt(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("export %s: %w", s.cfg.Name, err)
	}
	var first, last, good int64
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a line without its newline was torn: cut below
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("export %s: read %s: %w", s.cfg.Name, path, err)
		}
		var rec struct {
			Position int64 `json:"position"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Position <= 0 {
			break // not a whole record: cut it and what follows
		}
		if first == 0 {
			first = rec.Position
		}
		last = rec.Position
		good += int64(len(line))
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return fmt.Errorf("export %s: cut the torn end of %s: %w", s.cfg.Name, path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	s.f, s.path, s.started, s.size, s.first, s.last = f, path, startOf(path), good, first, last
	return nil
}

// Holds implements resumer.
func (s *fileSink) Holds() int64 { return s.held }

// Send implements Sink: lines appended, then one fsync. Records the files
// hold already (sent again after a failure) are skipped.
func (s *fileSink) Send(_ context.Context, records []Record) error {
	if s.f == nil && s.path != "" {
		// A failed write may have left a torn line: repair before going on.
		if err := s.recover(); err != nil {
			return err
		}
	}
	written := false
	for _, r := range records {
		if r.Position <= s.held || r.Position <= s.last {
			continue
		}
		line := r.MarshalLine()
		if s.f != nil && s.first != 0 && s.due(int64(len(line))) {
			if err := s.rotate(); err != nil {
				return s.broken(err)
			}
		}
		if s.f == nil {
			if err := s.create(); err != nil {
				return s.broken(err)
			}
		}
		if _, err := s.f.Write(line); err != nil {
			return s.broken(fmt.Errorf("export %s: write %s: %w", s.cfg.Name, s.path, err))
		}
		written = true
		s.size += int64(len(line))
		if s.first == 0 {
			s.first = r.Position
		}
		s.last = r.Position
	}
	if written {
		if err := s.f.Sync(); err != nil {
			return s.broken(fmt.Errorf("export %s: fsync %s: %w", s.cfg.Name, s.path, err))
		}
		s.held = s.last
	}
	return nil
}

// due says whether the active file is to be rotated before a line of n
// bytes: it would pass the size, or it is older than the interval.
func (s *fileSink) due(n int64) bool {
	if s.size+n > s.cfg.RotateBytes {
		return true
	}
	return s.cfg.RotateEvery > 0 && s.now().Sub(s.started) >= s.cfg.RotateEvery
}

// Idle implements idler: a file past its interval is completed while the
// log is quiet, not only when the next event comes.
func (s *fileSink) Idle(context.Context) error {
	if s.f != nil && s.first != 0 && s.cfg.RotateEvery > 0 && s.now().Sub(s.started) >= s.cfg.RotateEvery {
		if err := s.rotate(); err != nil {
			return s.broken(err)
		}
	}
	return nil
}

// broken drops the open file after a failure; the next Send repairs it.
func (s *fileSink) broken(err error) error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.path == "" {
		s.path = "?" // recover on the next Send
	}
	return err
}

func (s *fileSink) create() error {
	s.started = s.now()
	s.path = filepath.Join(s.cfg.Dir, fmt.Sprintf("%s%d%s", activePrefix, s.started.UnixMicro(), jsonlSuffix))
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("export %s: create %s: %w", s.cfg.Name, s.path, err)
	}
	s.f, s.size, s.first, s.last = f, 0, 0, 0
	return syncDir(s.cfg.Dir)
}

// rotate completes the active file: synced, closed, renamed to the
// positions it holds, and the directory synced. An empty one is removed.
func (s *fileSink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("export %s: fsync %s: %w", s.cfg.Name, s.path, err)
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	if s.first == 0 {
		if err := os.Remove(s.path); err != nil {
			return err
		}
	} else {
		done := filepath.Join(s.cfg.Dir, fmt.Sprintf("%s%020d-%020d%s", eventsPrefix, s.first, s.last, jsonlSuffix))
		if err := os.Rename(s.path, done); err != nil {
			return fmt.Errorf("export %s: rotate %s: %w", s.cfg.Name, s.path, err)
		}
	}
	s.path, s.size, s.first = "", 0, 0
	return syncDir(s.cfg.Dir)
}

// Close implements Sink: the active file stays active, synced.
func (s *fileSink) Close() error {
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.f.Sync(), s.f.Close())
	s.f = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

package transparency

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/logbookhq/logbook/domain/auditlog"
)

// StateFile keeps a witness's state, the last checkpoint it cosigned per
// log origin and key, in a JSON file replaced atomically (written beside
// it, synced, renamed, the directory synced), so a crash leaves the old
// state or the new one, never a torn one.
type StateFile struct {
	path  string
	state map[string]auditlog.WitnessState
}

// OpenStateFile reads the state at path; a missing file is an empty state.
func OpenStateFile(path string) (*StateFile, error) {
	s := &StateFile{path: path, state: map[string]auditlog.WitnessState{}}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &s.state); err != nil {
		return nil, fmt.Errorf("witness state %s is not the JSON this witness writes: %w", path, err)
	}
	return s, nil
}

// stateKey is a log's key in the state: its origin and its key's id.
func stateKey(l auditlog.WitnessedLog) string { return l.Origin + " " + auditlog.KeyID(l.Verifier) }

// Get returns the state held for a log, nil when none.
func (s *StateFile) Get(l auditlog.WitnessedLog) *auditlog.WitnessState {
	st, ok := s.state[stateKey(l)]
	if !ok {
		return nil
	}
	return &st
}

// Put stores a log's new state, durably, before it returns.
func (s *StateFile) Put(l auditlog.WitnessedLog, st auditlog.WitnessState) error {
	next := make(map[string]auditlog.WitnessState, len(s.state)+1)
	for k, v := range s.state {
		next[k] = v
	}
	next[stateKey(l)] = st
	raw, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(s.path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("save the witness state: %w", err)
	}
	s.state = next
	return nil
}

// WriteFileAtomic replaces path with data: a crash leaves the old file or
// the new one.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

package bundleconfig

import (
	"fmt"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/bundle"
)

// Command is a change to one bundle's configuration.
type Command interface {
	bundleName() string
}

// SetValue sets KEY=VALUE in a layer.
type SetValue struct {
	Bundle string
	Layer  Layer
	Key    string
	Value  string
}

// UnsetValue removes a plain value from a layer.
type UnsetValue struct {
	Bundle string
	Layer  Layer
	Key    string
}

// SetSecret records a new version of a secret in a layer; the caller
// stores the value in the vault under that version.
type SetSecret struct {
	Bundle string
	Layer  Layer
	Key    string
}

// UnsetSecret removes a secret from a layer.
type UnsetSecret struct {
	Bundle string
	Layer  Layer
	Key    string
}

func (c SetValue) bundleName() string    { return c.Bundle }
func (c UnsetValue) bundleName() string  { return c.Bundle }
func (c SetSecret) bundleName() string   { return c.Bundle }
func (c UnsetSecret) bundleName() string { return c.Bundle }

// StreamOf is the stream a command's events go to.
func StreamOf(c Command) string { return Stream(c.bundleName()) }

// Entry is one key's setting in one layer: a plain value, or a secret's
// version.
type Entry struct {
	Layer   Layer
	Key     string
	Secret  bool
	Value   string // plain values only
	Version int    // secrets only
}

type entryKey struct{ layer, key string }

// State is one bundle's configuration, folded from its stream.
type State struct {
	entries map[entryKey]Entry
	// versions is the last version each secret ever had, kept after an
	// unset, so a version never names two values.
	versions map[entryKey]int
}

// Evolve applies one event of the bundle's stream.
func Evolve(s State, e domain.Payload) State {
	if s.entries == nil {
		s.entries, s.versions = map[entryKey]Entry{}, map[entryKey]int{}
	}
	switch ev := e.(type) {
	case ConfigSet:
		if l, err := ParseLayer(ev.Layer); err == nil {
			s.entries[entryKey{ev.Layer, ev.Key}] = Entry{Layer: l, Key: ev.Key, Value: ev.Value}
		}
	case ConfigUnset:
		delete(s.entries, entryKey{ev.Layer, ev.Key})
	case SecretSet:
		if l, err := ParseLayer(ev.Layer); err == nil {
			k := entryKey{ev.Layer, ev.Key}
			s.entries[k] = Entry{Layer: l, Key: ev.Key, Secret: true, Version: ev.Version}
			s.versions[k] = max(s.versions[k], ev.Version)
		}
	case SecretUnset:
		delete(s.entries, entryKey{ev.Layer, ev.Key})
	}
	return s
}

// Fold rebuilds a bundle's state from its events.
func Fold(events []domain.Payload) State {
	var s State
	for _, e := range events {
		s = Evolve(s, e)
	}
	return s
}

// Lookup is the key's entry in a layer.
func (s State) Lookup(l Layer, key string) (Entry, bool) {
	e, ok := s.entries[entryKey{l.String(), key}]
	return e, ok
}

// Decide decides a command against the bundle's state: the events to
// record, none when it changes nothing, or an error. Setting the value a
// key already has, or unsetting a key not set, records nothing.
func Decide(s State, c Command) ([]domain.Payload, error) {
	if !bundle.ValidName(c.bundleName()) {
		return nil, invalidf("%q is not a bundle name", clip(c.bundleName()))
	}
	switch cmd := c.(type) {
	case SetValue:
		if err := checkTarget(cmd.Layer, cmd.Key); err != nil {
			return nil, err
		}
		if err := ValidateValue(cmd.Key, cmd.Value); err != nil {
			return nil, err
		}
		old, ok := s.Lookup(cmd.Layer, cmd.Key)
		if ok && old.Secret {
			return nil, conflictf("%s is a secret in %s of bundle %s; unset the secret first (secret unset)", cmd.Key, cmd.Layer, cmd.Bundle)
		}
		if ok && old.Value == cmd.Value {
			return nil, nil
		}
		return []domain.Payload{ConfigSet{Bundle: cmd.Bundle, Layer: cmd.Layer.String(), Key: cmd.Key, Value: cmd.Value}}, nil
	case UnsetValue:
		if err := checkTarget(cmd.Layer, cmd.Key); err != nil {
			return nil, err
		}
		old, ok := s.Lookup(cmd.Layer, cmd.Key)
		if !ok {
			return nil, nil
		}
		if old.Secret {
			return nil, conflictf("%s is a secret in %s of bundle %s; remove it with secret unset", cmd.Key, cmd.Layer, cmd.Bundle)
		}
		return []domain.Payload{ConfigUnset{Bundle: cmd.Bundle, Layer: cmd.Layer.String(), Key: cmd.Key}}, nil
	case SetSecret:
		if err := checkTarget(cmd.Layer, cmd.Key); err != nil {
			return nil, err
		}
		if old, ok := s.Lookup(cmd.Layer, cmd.Key); ok && !old.Secret {
			return nil, conflictf("%s is a plain value in %s of bundle %s; unset it first (config unset)", cmd.Key, cmd.Layer, cmd.Bundle)
		}
		// Every set is a new version, even of the same value: nobody
		// learns whether a secret changed, and the vault never compares.
		version := s.versions[entryKey{cmd.Layer.String(), cmd.Key}] + 1
		return []domain.Payload{SecretSet{Bundle: cmd.Bundle, Layer: cmd.Layer.String(), Key: cmd.Key, Version: version}}, nil
	case UnsetSecret:
		if err := checkTarget(cmd.Layer, cmd.Key); err != nil {
			return nil, err
		}
		old, ok := s.Lookup(cmd.Layer, cmd.Key)
		if !ok {
			return nil, nil
		}
		if !old.Secret {
			return nil, conflictf("%s is a plain value in %s of bundle %s; remove it with config unset", cmd.Key, cmd.Layer, cmd.Bundle)
		}
		return []domain.Payload{SecretUnset{Bundle: cmd.Bundle, Layer: cmd.Layer.String(), Key: cmd.Key, Version: old.Version}}, nil
	}
	return nil, invalidf("%T is not a configuration command", c)
}

// checkTarget validates a command's layer (which may come from a struct
// literal, not ParseLayer) and key.
func checkTarget(l Layer, key string) error {
	if _, err := ParseLayer(l.String()); err != nil {
		return err
	}
	return ValidateKey(key)
}

func conflictf(format string, args ...any) error {
	return &Error{Kind: KindConflict, Message: fmt.Sprintf(format, args...)}
}

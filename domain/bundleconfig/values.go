package bundleconfig

import (
	"cmp"
	"maps"
	"slices"

	"github.com/logbookhq/logbook/domain"
)

// Values is every bundle's configuration, folded from the log: the read
// model a run's environment is resolved from. It is not safe for
// concurrent use; its owner locks.
type Values map[string]State

// Apply folds one event; events of other streams are ignored.
func (v Values) Apply(p domain.Payload) {
	var name string
	switch ev := p.(type) {
	case ConfigSet:
		name = ev.Bundle
	case ConfigUnset:
		name = ev.Bundle
	case SecretSet:
		name = ev.Bundle
	case SecretUnset:
		name = ev.Bundle
	default:
		return
	}
	v[name] = Evolve(v[name], p)
}

// Scope is who runs a command and where: the layers that apply to it.
type Scope struct {
	Room   string
	Groups []string // the user's groups; applied in name order
	User   string   // username
}

// Layers are the layers of a scope in the order they merge: base, the
// room, each group by name, the user. A later layer's value wins.
func (s Scope) Layers() []Layer {
	layers := []Layer{BaseLayer}
	if s.Room != "" {
		layers = append(layers, Layer{Kind: Room, Name: s.Room})
	}
	for _, g := range slices.Sorted(slices.Values(s.Groups)) {
		layers = append(layers, Layer{Kind: Group, Name: g})
	}
	if s.User != "" {
		layers = append(layers, Layer{Kind: User, Name: s.User})
	}
	return layers
}

// Resolve merges a bundle's layers for a scope, shallowly: for each key,
// the entry of the last layer that sets it. Entries come sorted by key.
func (v Values) Resolve(bundle string, scope Scope) []Entry {
	s := v[bundle]
	merged := map[string]Entry{}
	for _, l := range scope.Layers() {
		for _, e := range s.entries {
			if e.Layer == l {
				merged[e.Key] = e
			}
		}
	}
	return slices.SortedFunc(maps.Values(merged), func(a, b Entry) int { return cmp.Compare(a.Key, b.Key) })
}

// Entries lists every entry of a bundle, by key, then layer precedence,
// then layer name.
func (v Values) Entries(bundle string) []Entry {
	return slices.SortedFunc(maps.Values(v[bundle].entries), func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Layer.rank(), b.Layer.rank()), cmp.Compare(a.Layer.Name, b.Layer.Name))
	})
}

// HasKey reports whether any layer of the bundle sets key.
func (v Values) HasKey(bundle, key string) bool {
	for _, e := range v[bundle].entries {
		if e.Key == key {
			return true
		}
	}
	return false
}

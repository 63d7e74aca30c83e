package bundleconfig

import (
	"github.com/logbookhq/logbook/domain"
)

// StreamPrefix is the category of configuration streams:
// `bundleconfig-<bundle>`.
const StreamPrefix = "bundleconfig-"

// Stream names the configuration stream of a bundle.
func Stream(bundle string) string { return StreamPrefix + bundle }

// ConfigSet sets a plain value in one layer. Plain values are not secret:
// they are recorded as they are, and so is every run's copy.
type ConfigSet struct {
	Bundle string `json:"bundle"`
	Layer  string `json:"layer"`
	Key    string `json:"key"`
	Value  string `json:"value"`
}

// ConfigUnset removes a plain value from one layer.
type ConfigUnset struct {
	Bundle string `json:"bundle"`
	Layer  string `json:"layer"`
	Key    string `json:"key"`
}

// SecretSet records that a secret's value was stored, under a version that
// names that value and no other. The value is never here, nor any hash of
// it: only the vault holds it, encrypted.
type SecretSet struct {
	Bundle  string `json:"bundle"`
	Layer   string `json:"layer"`
	Key     string `json:"key"`
	Version int    `json:"version"`
}

// SecretUnset removes a secret from one layer; its value is deleted from
// the vault.
type SecretUnset struct {
	Bundle  string `json:"bundle"`
	Layer   string `json:"layer"`
	Key     string `json:"key"`
	Version int    `json:"version"` // the version removed
}

// SecretKeyStream is the stream of the site's secret key events.
const SecretKeyStream = "secretkeys-site"

// SecretKeyRotated records that every stored secret was encrypted again
// under a new key. KeyID names the key (a fingerprint that reveals nothing
// of it); Reencrypted counts the values.
type SecretKeyRotated struct {
	KeyID       string `json:"key_id"`
	Reencrypted int    `json:"reencrypted"`
}

func (ConfigSet) EventType() string        { return "ConfigSet" }
func (ConfigUnset) EventType() string      { return "ConfigUnset" }
func (SecretSet) EventType() string        { return "SecretSet" }
func (SecretUnset) EventType() string      { return "SecretUnset" }
func (SecretKeyRotated) EventType() string { return "SecretKeyRotated" }

func init() {
	domain.Register[ConfigSet]()
	domain.Register[ConfigUnset]()
	domain.Register[SecretSet]()
	domain.Register[SecretUnset]()
	domain.Register[SecretKeyRotated]()
}

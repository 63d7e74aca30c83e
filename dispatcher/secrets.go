package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// KeyRotator encrypts every secret again under a new key
// (secretvault.Vault).
type KeyRotator interface {
	Rotate(ctx context.Context) (keyID string, reencrypted int, err error)
}

// Secrets sets secrets and rotates their key: the vault and the log
// together. A secret's value comes over an authenticated API call, never
// in a chat message, since a message is recorded as it was typed. The
// value goes to the vault under the next version, then SecretSet records
// the version; a version never recorded is deleted again, and the one
// before it goes once the new one is recorded.
type Secrets struct {
	Store   eventstore.Store
	Vault   bundleconfig.Vault // nil: the server keeps no secrets
	Rotator KeyRotator         // nil: no rotation
	// Facts are told the change at once, so a request sent right after
	// finds the secret (nil: the feed brings it).
	Facts *Facts
}

// Set stores value as the next version of bundle's secret key in layer,
// as actor, and returns that version.
func (s *Secrets) Set(ctx context.Context, actor string, bundle string, layer bundleconfig.Layer, key, value string) (int, error) {
	if s.Vault == nil {
		return 0, bundleconfig.ErrNoVault
	}
	if err := bundleconfig.ValidateValue(key, value); err != nil {
		return 0, err
	}
	if err := s.checkLayer(layer); err != nil {
		return 0, err
	}
	stream := bundleconfig.Stream(bundle)
	for attempt := 0; ; attempt++ {
		state, version, err := s.load(ctx, stream)
		if err != nil {
			return 0, err
		}
		events, err := bundleconfig.Decide(state, bundleconfig.SetSecret{Bundle: bundle, Layer: layer, Key: key})
		if err != nil {
			return 0, err
		}
		set := events[0].(bundleconfig.SecretSet)
		ref := bundleconfig.SecretRef{Bundle: bundle, Layer: set.Layer, Key: key, Version: set.Version}
		if err := s.Vault.Put(ctx, ref, value); err != nil {
			return 0, err
		}
		e, err := domain.Encode(set, domain.Metadata{CorrelationID: uuid.NewString(), Actor: actor})
		if err != nil {
			return 0, err
		}
		_, err = s.Store.Append(ctx, stream, eventstore.Exact(version), e)
		if err != nil {
			// Not recorded: the value under that version must not stay.
			cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = s.Vault.Delete(cleanupCtx, ref)
			cancel()
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) && attempt < 3 {
				continue // another change to the bundle's configuration: decide again
			}
			return 0, fmt.Errorf("record the secret: %w", err)
		}
		if s.Facts != nil {
			s.Facts.Apply(set, domain.RecordedEvent{Stream: stream})
		}
		if set.Version > 1 {
			older := ref
			older.Version--
			if err := s.Vault.DeleteThrough(ctx, older); err != nil {
				return set.Version, fmt.Errorf("the secret is set (version %d), but its older values were not deleted: %w", set.Version, err)
			}
		}
		return set.Version, nil
	}
}

// checkLayer refuses a group or user layer that names nobody: a typo
// would otherwise hold a secret no run ever gets.
func (s *Secrets) checkLayer(layer bundleconfig.Layer) error {
	if s.Facts == nil {
		return nil
	}
	return CheckLayer(s.Facts, layer)
}

// CheckLayer refuses a group or user layer naming no group or user of
// the directory. Rooms are the chat providers' and are not checked.
func CheckLayer(f interface {
	ReadDirectory(func(*access.Directory))
}, layer bundleconfig.Layer) error {
	var err error
	f.ReadDirectory(func(d *access.Directory) {
		switch layer.Kind {
		case bundleconfig.Group:
			if !d.GroupExists(layer.Name) {
				err = notFoundError("there is no group named " + layer.Name)
			}
		case bundleconfig.User:
			if _, ok := d.UserByUsername(layer.Name); !ok {
				err = notFoundError("there is no user named " + layer.Name)
			}
		}
	})
	return err
}

func (s *Secrets) load(ctx context.Context, stream string) (bundleconfig.State, int64, error) {
	var state bundleconfig.State
	version := int64(-1)
	for {
		events, err := s.Store.ReadStream(ctx, stream, version+1, 1000)
		if err != nil {
			return state, 0, err
		}
		for _, e := range events {
			p, err := domain.Decode(e)
			if err != nil {
				return state, 0, err
			}
			state = bundleconfig.Evolve(state, p)
			version = e.Version
		}
		if len(events) < 1000 {
			return state, version, nil
		}
	}
}

// RotateKey encrypts every secret again under a new key and records
// SecretKeyRotated, as actor.
func (s *Secrets) RotateKey(ctx context.Context, actor string) (string, int, error) {
	if s.Rotator == nil {
		return "", 0, bundleconfig.ErrNoVault
	}
	keyID, n, err := s.Rotator.Rotate(ctx)
	if err != nil {
		return keyID, n, err
	}
	e, err := domain.Encode(bundleconfig.SecretKeyRotated{KeyID: keyID, Reencrypted: n}, domain.Metadata{CorrelationID: uuid.NewString(), Actor: actor})
	if err != nil {
		return keyID, n, err
	}
	if _, err := s.Store.Append(ctx, bundleconfig.SecretKeyStream, eventstore.Any, e); err != nil {
		return keyID, n, fmt.Errorf("the key was rotated (%s), but the rotation was not recorded: %w", keyID, err)
	}
	return keyID, n, nil
}

// notFoundError is a layer naming nobody; HTTP answers it 404.
type notFoundError string

func (e notFoundError) Error() string  { return string(e) }
func (e notFoundError) NotFound() bool { return true }

package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/schedule"
	"github.com/logbookhq/logbook/domain/trigger"
)

// Triggers reads triggers from their streams and keeps their HMAC secrets:
// the value in the vault (under bundle "trigger", layer the trigger's
// name), the version in TriggerSecretSet. A call reads its trigger from the
// store, so a disable or a new secret holds from the next call on.
type Triggers struct {
	Store eventstore.Store
	Vault bundleconfig.Vault // nil: the server keeps no secrets, and HMAC triggers refuse every call
}

// ErrNoSecret says a trigger that requires a signature has no secret set.
var ErrNoSecret = errors.New("the trigger requires an HMAC signature and has no secret set; set it with `logbook trigger secret NAME`")

func secretRef(name string, version int) bundleconfig.SecretRef {
	return bundleconfig.SecretRef{Bundle: trigger.Provider, Layer: name, Key: "HMAC_SECRET", Version: version}
}

// Load folds a trigger's stream, and says its version (-1: none).
func (t *Triggers) Load(ctx context.Context, name string) (trigger.Trigger, int64, error) {
	var state trigger.Trigger
	version := int64(-1) // versions count from 0 without gaps
	err := eachEvent(ctx, t.Store, trigger.Stream(name), func(p domain.Payload) {
		state, version = trigger.Evolve(state, p), version+1
	})
	return state, version, err
}

// LoadSchedule folds a schedule's stream.
func (t *Triggers) LoadSchedule(ctx context.Context, name string) (schedule.Schedule, error) {
	var state schedule.Schedule
	err := eachEvent(ctx, t.Store, schedule.Stream(name), func(p domain.Payload) { state = schedule.Evolve(state, p) })
	return state, err
}

// Secret reveals the trigger's HMAC secret in force.
func (t *Triggers) Secret(ctx context.Context, name string, tr trigger.Trigger) ([]byte, error) {
	if tr.SecretVersion() == 0 || t.Vault == nil {
		return nil, ErrNoSecret
	}
	v, err := t.Vault.Reveal(ctx, secretRef(name, tr.SecretVersion()))
	if errors.Is(err, bundleconfig.ErrSecretNotFound) {
		return nil, ErrNoSecret
	}
	return []byte(v), err
}

// SetSecret stores value as the trigger's next secret version, records
// it, and deletes the older values; a version not recorded is deleted
// again.
func (t *Triggers) SetSecret(ctx context.Context, actor, name, value string) (int, error) {
	for attempt := 0; ; attempt++ {
		tr, version, err := t.Load(ctx, name)
		if err != nil {
			return 0, err
		}
		if !tr.Exists() {
			return 0, fmt.Errorf("%w: %s", trigger.ErrNotFound, name)
		}
		if t.Vault == nil {
			return 0, bundleconfig.ErrNoVault
		}
		if len(value) < 16 || len(value) > 4096 {
			return 0, fmt.Errorf("the secret is %d bytes long; expected 16 to 4096", len(value))
		}
		events, err := trigger.Decide(tr, trigger.SetSecret{By: actor})
		if err != nil {
			return 0, err
		}
		set := events[0].(trigger.SecretSet)
		ref := secretRef(name, set.Version)
		if err := t.Vault.Put(ctx, ref, value); err != nil {
			return 0, err
		}
		e, err := domain.Encode(set, domain.Metadata{CorrelationID: uuid.NewString(), Actor: actor})
		if err != nil {
			return 0, err
		}
		if _, err := t.Store.Append(ctx, trigger.Stream(name), eventstore.Exact(version), e); err != nil {
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = t.Vault.Delete(cleanup, ref)
			cancel()
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) && attempt < 3 {
				continue
			}
			return 0, fmt.Errorf("record the secret: %w", err)
		}
		if set.Version > 1 {
			older := ref
			older.Version--
			if err := t.Vault.DeleteThrough(ctx, older); err != nil {
				return set.Version, fmt.Errorf("the secret is set (version %d), but its older values were not deleted: %w", set.Version, err)
			}
		}
		return set.Version, nil
	}
}

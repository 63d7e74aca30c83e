package dispatcher

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// ErrAlreadyBootstrapped means an admin already exists.
var ErrAlreadyBootstrapped = errors.New("already bootstrapped")

// Bootstrap creates the first administrator on an empty installation: the
// user `admin` in the `admin` group, whose `admin` role holds every
// logbook:* permission, and an API token for it. It returns the token,
// which is shown once and stored only as a hash. Each stream is appended
// expecting no stream, so two servers starting at once bootstrap once: the
// loser gets ErrAlreadyBootstrapped.
func Bootstrap(ctx context.Context, store eventstore.Store) (string, error) {
	userID := uuid.NewString()
	token, hash := access.NewToken()
	md := domain.Metadata{Actor: "bootstrap"}
	appends := []struct {
		stream string
		events []domain.Payload
	}{
		{access.RoleStream(access.AdminGroup), append([]domain.Payload{access.RoleCreated{Role: access.AdminGroup}}, grants()...)},
		{access.UserStream(userID), []domain.Payload{
			access.UserCreated{User: userID, Username: "admin"},
			access.TokenIssued{User: userID, Hash: hash, Note: "bootstrap"},
		}},
		{access.GroupStream(access.AdminGroup), []domain.Payload{
			access.GroupCreated{Group: access.AdminGroup},
			access.MemberAdded{Group: access.AdminGroup, User: userID},
			access.RoleGranted{Group: access.AdminGroup, Role: access.AdminGroup},
		}},
	}
	for i, a := range appends {
		events := make([]domain.NewEvent, len(a.events))
		for j, p := range a.events {
			events[j] = domain.MustEncode(p, md)
		}
		if _, err := store.Append(ctx, a.stream, eventstore.NoStream, events...); err != nil {
			if i == 0 && errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				return "", ErrAlreadyBootstrapped
			}
			return "", fmt.Errorf("bootstrap %s: %w", a.stream, err)
		}
	}
	return token, nil
}

func grants() []domain.Payload {
	out := make([]domain.Payload, len(AdminPermissions))
	for i, p := range AdminPermissions {
		out[i] = access.PermissionGranted{Role: access.AdminGroup, Permission: p}
	}
	return out
}

// InstallBundle records a bundle version and enables it, unless that
// version is installed already. The config must validate.
func InstallBundle(ctx context.Context, store eventstore.Store, config []byte, actor string) (*bundle.Bundle, error) {
	b, err := bundle.Load(config)
	if err != nil {
		return nil, err
	}
	md := domain.Metadata{Actor: actor}
	stream, payloads, ids := bundle.InstallEvents(b, config)
	events := make([]domain.NewEvent, len(payloads))
	for i, p := range payloads {
		events[i] = domain.MustEncode(p, md)
		events[i].ID = ids[i]
	}
	if _, err := store.Append(ctx, stream, eventstore.Any, events...); err != nil {
		return nil, fmt.Errorf("install bundle %s %s: %w", b.Name, b.Version, err)
	}
	return b, nil
}

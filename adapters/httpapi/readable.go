package httpapi

import (
	"context"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// HistoryReaderOf is user as the history rule (access.HistoryReader) sees
// them, with the permissions the live model gives them now.
func HistoryReaderOf(users Users, user access.UserInfo) access.HistoryReader {
	return access.HistoryReader{Username: user.Username, Permissions: users.PermissionsOf(user.ID)}
}

// identityEvents is how far into a request's stream its sender is
// identified: RequestReceived, a UserRegistered when the request
// registered its sender, then IdentityResolved or IdentityUnknown.
const identityEvents = 3

// RequestOwner reads from the store whose request id is
// (dispatch.Request.Owner): the user its sender was identified as, "" for
// an unknown sender. found is false when the store has no such request.
// The store, not a view, answers, so a lagging view never decides who may
// read.
func RequestOwner(ctx context.Context, store eventstore.Store, id string) (owner string, found bool, err error) {
	if len(id) > maxIDLength {
		return "", false, nil
	}
	events, err := store.ReadStream(ctx, dispatch.Stream(id), 0, identityEvents)
	if err != nil || len(events) == 0 {
		return "", false, err
	}
	var req dispatch.Request
	for _, e := range events {
		p, err := domain.Decode(e)
		if err != nil {
			return "", true, err
		}
		req = dispatch.Evolve(req, p)
	}
	return req.Owner(), true, nil
}

// RunOwner reads from the store whose run id is: the username its
// RunRequested carries (the request's sender), "" for an unknown sender.
// found is false when the store has no such run.
func RunOwner(ctx context.Context, store eventstore.Store, id string) (owner string, found bool, err error) {
	if len(id) > maxIDLength {
		return "", false, nil
	}
	events, err := store.ReadStream(ctx, run.Stream(id), 0, 1)
	if err != nil || len(events) == 0 {
		return "", false, err
	}
	p, err := domain.Decode(events[0])
	if err != nil {
		return "", true, err
	}
	requested, _ := p.(run.RunRequested)
	return requested.Invocation.Username, true, nil
}

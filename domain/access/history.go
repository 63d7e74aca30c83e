package access

import "slices"

// PermReadHistory lets a user read every user's requests, runs and
// transcripts, and those of senders Logbook does not know.
const PermReadHistory = "logbook:read_history"

// HistoryReader is someone reading the history: who they are and the
// permissions they hold now. Its methods are the one rule every surface
// (the chat builtins, the HTTP API, the web UI and their streams) applies.
type HistoryReader struct {
	Username    string
	Permissions []string
}

// MayRead reports whether the reader may read a request, a run or a
// transcript of owner, the username of the request's sender: their own,
// or anyone's with logbook:read_history. A request whose sender is unknown
// (owner "", also while the sender is not identified yet) is readable only
// with the permission.
func (r HistoryReader) MayRead(owner string) bool {
	return (owner != "" && owner == r.Username) || r.ReadsEveryone()
}

// ListFilter is the user filter a list of requests or runs is read with,
// given the one asked for: a list asked for without one is the reader's
// own, unless they may read everyone's; another user's needs the
// permission, and is refused with a KindForbidden error naming it.
func (r HistoryReader) ListFilter(user string) (string, error) {
	switch {
	case r.ReadsEveryone():
		return user, nil
	case user == "" || user == r.Username:
		return r.Username, nil
	}
	return "", errorf(KindForbidden, "reading %s's history needs the %s permission", user, PermReadHistory)
}

// ReadsEveryone reports whether the reader holds logbook:read_history.
func (r HistoryReader) ReadsEveryone() bool { return slices.Contains(r.Permissions, PermReadHistory) }

package access

import "github.com/logbookhq/logbook/domain"

// SessionStream is where a user's logins to the web UI are recorded.
func SessionStream(user string) string { return "session-" + user }

// SessionStarted records a login to the web UI with a token: who, and
// from which client address (an IPv6 one by its /64, as the login
// throttle counts it). The session id and the token are never recorded.
type SessionStarted struct {
	User     string `json:"user"`
	Username string `json:"username"`
	Client   string `json:"client"`
}

// SessionEnded records a logout.
type SessionEnded struct {
	User     string `json:"user"`
	Username string `json:"username"`
}

func (SessionStarted) EventType() string { return "SessionStarted" }
func (SessionEnded) EventType() string   { return "SessionEnded" }

func (e SessionStarted) Stream() string { return SessionStream(e.User) }
func (e SessionEnded) Stream() string   { return SessionStream(e.User) }

func init() {
	domain.Register[SessionStarted]()
	domain.Register[SessionEnded]()
}

package webui

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/logbookhq/logbook/domain/dispatch"
)

// StoredSession is a web session as a SessionStore keeps it.
type StoredSession struct {
	// ID is the cookie's value: 32 random bytes, base64url.
	ID string
	// User is the id of the user who logged in; the store bounds each
	// user's sessions.
	User string
	// Token is the API token the person logged in with; every request
	// checks it again, so a revoked token ends the session.
	Token string
	// CSRF is the token each of the session's POSTs must carry.
	CSRF    string
	Created time.Time
	// Seen is when the session was last used, to the minute (touchEvery).
	Seen time.Time
}

// ConsoleCommand is one command typed in a session's console.
type ConsoleCommand struct {
	RequestID string
	Text      string
	At        time.Time
}

// SessionStore keeps the web sessions and their consoles' scrollback. The
// UI decides from the stored times when a session has expired; the store
// keeps, reads and deletes. MemorySessions keeps them in the process;
// SQLSessions in the database every server shares.
type SessionStore interface {
	// Create stores a new session, and deletes that user's least recently
	// seen sessions beyond maxSessionsPerUser.
	Create(ctx context.Context, s StoredSession) error
	// Load reads the session whose cookie is id; false when there is none.
	Load(ctx context.Context, id string) (StoredSession, bool, error)
	// Touch records that the session was used at seen.
	Touch(ctx context.Context, id string, seen time.Time) error
	// Remember appends a command to the session's scrollback, drops the
	// oldest beyond maxScrollback, and returns the request ids dropped. A
	// session that is gone remembers nothing.
	Remember(ctx context.Context, id string, c ConsoleCommand) (dropped []string, err error)
	// Scrollback lists the session's commands, oldest first.
	Scrollback(ctx context.Context, id string) ([]ConsoleCommand, error)
	// Delete ends the session, with its scrollback.
	Delete(ctx context.Context, id string) error
	// Expire deletes the sessions last seen before seenBefore or created
	// before createdBefore, with their scrollback, and says how many.
	Expire(ctx context.Context, seenBefore, createdBefore time.Time) (int, error)
}

// maxSessionsPerUser bounds each user's sessions; a login past it ends the
// user's least recently seen one. The bound is per user rather than in
// total: users are few (an administrator makes them) and each holds a
// handful of browsers, while a total would let one user's script log
// everyone else out. With expiry (each login first deletes the sessions
// expired, at most once a minute per server), the sessions held are at
// most users × maxSessionsPerUser, each with maxScrollback commands.
const maxSessionsPerUser = 100

// maxScrollback is how many console commands a session remembers.
const maxScrollback = 50

// MemorySessions keeps the sessions in this process: a restart ends them
// and no other server sees them. It is the UI's store when Config has
// none.
type MemorySessions struct {
	mu     sync.Mutex
	byID   map[string]*memorySession
	byUser map[string]map[string]*memorySession
}

type memorySession struct {
	StoredSession
	commands []ConsoleCommand // oldest first
}

// NewMemorySessions returns an empty MemorySessions.
func NewMemorySessions() *MemorySessions {
	return &MemorySessions{byID: map[string]*memorySession{}, byUser: map[string]map[string]*memorySession{}}
}

// Create implements SessionStore.
func (m *MemorySessions) Create(_ context.Context, s StoredSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteLocked(s.ID)
	ms := &memorySession{StoredSession: s}
	m.byID[s.ID] = ms
	mine := m.byUser[s.User]
	if mine == nil {
		mine = map[string]*memorySession{}
		m.byUser[s.User] = mine
	}
	mine[s.ID] = ms
	if over := len(mine) - maxSessionsPerUser; over > 0 {
		oldest := make([]*memorySession, 0, len(mine))
		for _, o := range mine {
			oldest = append(oldest, o)
		}
		slices.SortFunc(oldest, func(a, b *memorySession) int { return a.Seen.Compare(b.Seen) })
		for _, o := range oldest[:over] {
			m.deleteLocked(o.ID)
		}
	}
	return nil
}

// Load implements SessionStore.
func (m *MemorySessions) Load(_ context.Context, id string) (StoredSession, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	if !ok {
		return StoredSession{}, false, nil
	}
	return s.StoredSession, true, nil
}

// Touch implements SessionStore.
func (m *MemorySessions) Touch(_ context.Context, id string, seen time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.byID[id]; ok && seen.After(s.Seen) {
		s.Seen = seen
	}
	return nil
}

// Remember implements SessionStore.
func (m *MemorySessions) Remember(_ context.Context, id string, c ConsoleCommand) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	if !ok {
		return nil, nil
	}
	s.commands = append(s.commands, c)
	over := len(s.commands) - maxScrollback
	if over <= 0 {
		return nil, nil
	}
	dropped := make([]string, over)
	for i, old := range s.commands[:over] {
		dropped[i] = old.RequestID
	}
	s.commands = slices.Clone(s.commands[over:])
	return dropped, nil
}

// Scrollback implements SessionStore.
func (m *MemorySessions) Scrollback(_ context.Context, id string) ([]ConsoleCommand, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.byID[id]; ok {
		return slices.Clone(s.commands), nil
	}
	return nil, nil
}

// Delete implements SessionStore.
func (m *MemorySessions) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteLocked(id)
	return nil
}

// Expire implements SessionStore.
func (m *MemorySessions) Expire(_ context.Context, seenBefore, createdBefore time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, s := range m.byID {
		if s.Seen.Before(seenBefore) || s.Created.Before(createdBefore) {
			m.deleteLocked(id)
			n++
		}
	}
	return n, nil
}

func (m *MemorySessions) deleteLocked(id string) {
	s, ok := m.byID[id]
	if !ok {
		return
	}
	delete(m.byID, id)
	mine := m.byUser[s.User]
	delete(mine, id)
	if len(mine) == 0 {
		delete(m.byUser, s.User)
	}
}

// session is the session a request came with, as loaded for it. Its
// fields are unexported so no template can show the token.
type session struct {
	id    string
	token string
	csrf  string
}

// touchEvery is how stale a session's Seen may get: a page view writes it
// only when it is older, so browsing is not a database write per page. The
// idle limit is thus kept to within a minute.
const touchEvery = time.Minute

// sweepEvery is how often, at most, a login on this server first deletes
// the sessions that have expired.
const sweepEvery = time.Minute

// sessions applies the lifetimes to the stored sessions and keeps this
// process's waits for the replies to its consoles' requests.
type sessions struct {
	store     SessionStore
	now       func() time.Time
	idle, max time.Duration
	waits     *replyWaits

	sweepMu   sync.Mutex
	lastSweep time.Time
}

func newSessions(store SessionStore, now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{store: store, now: now, idle: idle, max: max, waits: newReplyWaits()}
}

// start opens a session for user, who logged in with token.
func (ss *sessions) start(ctx context.Context, user, token string) (*session, error) {
	if err := ss.sweep(ctx); err != nil {
		return nil, err
	}
	now := ss.now()
	s := StoredSession{ID: randomString(), User: user, Token: token, CSRF: randomString(), Created: now, Seen: now}
	if err := ss.store.Create(ctx, s); err != nil {
		return nil, err
	}
	return sessionOf(s), nil
}

func sessionOf(s StoredSession) *session {
	return &session{id: s.ID, token: s.Token, csrf: s.CSRF}
}

// sweep deletes the expired sessions, unless this server did so within
// sweepEvery.
func (ss *sessions) sweep(ctx context.Context) error {
	now := ss.now()
	ss.sweepMu.Lock()
	if !ss.lastSweep.IsZero() && now.Sub(ss.lastSweep) < sweepEvery {
		ss.sweepMu.Unlock()
		return nil
	}
	ss.lastSweep = now
	ss.sweepMu.Unlock()
	_, err := ss.store.Expire(ctx, now.Add(-ss.idle), now.Add(-ss.max))
	return err
}

// get loads the live session whose cookie is id; an expired one is
// deleted and refused.
func (ss *sessions) get(ctx context.Context, id string) (*session, bool, error) {
	stored, ok, err := ss.store.Load(ctx, id)
	if err != nil || !ok {
		return nil, false, err
	}
	now := ss.now()
	if now.Sub(stored.Seen) > ss.idle || now.Sub(stored.Created) > ss.max {
		return nil, false, ss.end(ctx, id)
	}
	if now.Sub(stored.Seen) >= touchEvery {
		if err := ss.store.Touch(ctx, id, now); err != nil {
			return nil, false, err
		}
	}
	return sessionOf(stored), true, nil
}

// end deletes the session and ends this process's waits for its replies.
func (ss *sessions) end(ctx context.Context, id string) error {
	ss.waits.forgetSession(id)
	return ss.store.Delete(ctx, id)
}

// scrollback is the session's console history, oldest first.
func (ss *sessions) scrollback(ctx context.Context, s *session) ([]ConsoleCommand, error) {
	return ss.store.Scrollback(ctx, s.id)
}

// remember adds a command to the session's scrollback, and ends the waits
// for the replies of those it drops.
func (ss *sessions) remember(ctx context.Context, s *session, c ConsoleCommand) error {
	dropped, err := ss.store.Remember(ctx, s.id, c)
	for _, id := range dropped {
		ss.waits.forget(s.id, id)
	}
	return err
}

// pendingReply is the dispatcher's wait for the reply to a request a
// session sent; stop ends the wait.
type pendingReply struct {
	reply <-chan dispatch.Reply
	stop  context.CancelFunc
}

// replyWaits holds this process's waits for the replies to the requests
// its consoles sent, by session and request. A wait is a channel the
// dispatcher of this process fills, so it cannot live in the database: a
// reply that carries a secret (a new token) reaches the console only on
// the server that recorded the request; any other shows the reply rendered
// from the log. A wait leaves when its reply is taken, when its command
// leaves the scrollback, when its session ends here, and when its context
// ends (after consoleReplyWait at the latest, or at shutdown), so waits
// of sessions ended on another server do not pile up.
type replyWaits struct {
	mu        sync.Mutex
	bySession map[string]map[string]*pendingReply
}

func newReplyWaits() *replyWaits {
	return &replyWaits{bySession: map[string]map[string]*pendingReply{}}
}

// add registers the wait for requestID's reply, which lasts as long as
// wait does.
func (rw *replyWaits) add(session, requestID string, wait context.Context, reply <-chan dispatch.Reply, stop context.CancelFunc) {
	p := &pendingReply{reply: reply, stop: stop}
	rw.mu.Lock()
	mine := rw.bySession[session]
	if mine == nil {
		mine = map[string]*pendingReply{}
		rw.bySession[session] = mine
	}
	if old, ok := mine[requestID]; ok {
		old.stop()
	}
	mine[requestID] = p
	rw.mu.Unlock()
	context.AfterFunc(wait, func() {
		rw.mu.Lock()
		defer rw.mu.Unlock()
		if rw.bySession[session][requestID] == p {
			rw.dropLocked(session, requestID)
		}
	})
}

// channel is the channel registered for requestID's reply; nil when this
// process holds no wait for it.
func (rw *replyWaits) channel(session, requestID string) <-chan dispatch.Reply {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if p, ok := rw.bySession[session][requestID]; ok {
		return p.reply
	}
	return nil
}

// forget ends the wait for one reply.
func (rw *replyWaits) forget(session, requestID string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.dropLocked(session, requestID)
}

// forgetSession ends every wait of a session.
func (rw *replyWaits) forgetSession(session string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for id := range rw.bySession[session] {
		rw.dropLocked(session, id)
	}
}

// waiting counts the waits held, for tests.
func (rw *replyWaits) waiting() int {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	n := 0
	for _, mine := range rw.bySession {
		n += len(mine)
	}
	return n
}

func (rw *replyWaits) dropLocked(session, requestID string) {
	mine := rw.bySession[session]
	p, ok := mine[requestID]
	if !ok {
		return
	}
	p.stop()
	delete(mine, requestID)
	if len(mine) == 0 {
		delete(rw.bySession, session)
	}
}

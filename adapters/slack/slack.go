// Package slack is the Slack chat provider (github.com/slack-go/slack): it
// receives messages over Socket Mode or the Events API over HTTP (signed
// requests, a replay window, retried deliveries recognised), answers the `!`
// prefix, @mentions, direct messages and the /logbook slash command, and
// posts replies within Slack's rate limits, each part carrying metadata
// that lets a part whose post went unrecorded be found again instead of
// posted twice.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
)

// Name is the provider's adapter name, in RequestReceived and handles.
const Name = "slack"

// Limits: Slack takes 40,000 characters in a message, but a reply that long
// is unreadable; 3,500 bytes a message and four messages, then a file.
var Limits = chat.Limits{MaxMessageBytes: 3500, MaxParts: 4, UploadFiles: true}

// Config configures the provider.
type Config struct {
	BotToken      string // xoxb-…: the Web API
	AppToken      string // xapp-…: Socket Mode (empty: HTTP only)
	SigningSecret string // checks Events API requests (empty: no HTTP)
	APIURL        string // the Web API base URL, ending in "/" (empty: Slack's)
	// Threads answers a request typed in a channel in a thread under it.
	// A request typed in a thread is answered there either way.
	Threads bool
	// PostInterval is the least time between two posts to one channel
	// (default one second, Slack's documented pace).
	PostInterval time.Duration
	// ReplayWindow is how far a request's timestamp may be from now
	// (default five minutes, as Slack recommends).
	ReplayWindow time.Duration
	HTTPClient   *http.Client // default: 30 s timeout
	Logger       zerolog.Logger
	// Now is the clock, for tests of the replay window.
	Now func() time.Time
}

// Provider is the Slack chat provider.
type Provider struct {
	cfg  Config
	api  *slack.Client
	log  zerolog.Logger
	seen *recentIDs // event ids already handled, for retried deliveries

	mu        sync.RWMutex
	ready     chan struct{} // closed once the bot's identity is known
	readyOnce sync.Once
	botID     string // the bot's user id (U…)
	botName   string
	byID      map[string]chat.Room // channels by id
	byName    map[string]string    // channel name → id
	ims       map[string]string    // user id → direct message channel id
	limiters  map[string]*rate.Limiter
	blocked   map[string]time.Time // channel → no post before (a 429's Retry-After)
	handler   chat.Handler
}

// New builds the provider; Run connects it.
func New(cfg Config) (*Provider, error) {
	if cfg.BotToken == "" {
		return nil, errors.New("slack: a bot token (xoxb-…) is required")
	}
	if cfg.AppToken == "" && cfg.SigningSecret == "" {
		return nil, errors.New("slack: an app token (Socket Mode) or a signing secret (Events API) is required to receive messages")
	}
	if cfg.PostInterval == 0 {
		cfg.PostInterval = time.Second
	}
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []slack.Option{}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(strings.TrimSuffix(cfg.APIURL, "/")+"/"))
	}
	if cfg.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken))
	}
	if cfg.HTTPClient == nil {
		// A Web API call that hangs would hold its channel's queue: give
		// up after 30 s; the part is then looked up before it is retried.
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	opts = append(opts, slack.OptionHTTPClient(cfg.HTTPClient))
	return &Provider{
		cfg: cfg, api: slack.New(cfg.BotToken, opts...), log: cfg.Logger.With().Str("provider", Name).Logger(),
		seen: newRecentIDs(10000), ready: make(chan struct{}),
		byID: map[string]chat.Room{}, byName: map[string]string{}, ims: map[string]string{},
		limiters: map[string]*rate.Limiter{}, blocked: map[string]time.Time{},
	}, nil
}

// Name implements chat.Provider.
func (p *Provider) Name() string { return Name }

// Limits implements chat.Provider.
func (p *Provider) Limits() chat.Limits { return Limits }

// MentionName implements chat.Provider.
func (p *Provider) MentionName() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.botName == "" {
		return "@logbook"
	}
	return "@" + p.botName
}

// connect learns who the bot is (auth.test) and which channels it is in.
// A rejected token is permanent; anything else is worth retrying.
func (p *Provider) connect(ctx context.Context) error {
	auth, err := p.api.AuthTestContext(ctx)
	if err != nil {
		return classify("auth.test", err)
	}
	p.mu.Lock()
	p.botID, p.botName = auth.UserID, auth.User
	p.mu.Unlock()
	if err := p.refreshChannels(ctx); err != nil {
		return err
	}
	p.readyOnce.Do(func() { close(p.ready) })
	p.log.Info().Str("bot_user", auth.UserID).Str("team", auth.Team).Msg("connected to Slack")
	return nil
}

// refreshChannels reloads the channels the bot can see and whether it is a
// member of each (conversations.list).
func (p *Provider) refreshChannels(ctx context.Context) error {
	byID := map[string]chat.Room{}
	byName := map[string]string{}
	cursor := ""
	for {
		channels, next, err := p.api.GetConversationsContext(ctx, &slack.GetConversationsParameters{
			Cursor: cursor, ExcludeArchived: true, Limit: 1000, Types: []string{"public_channel", "private_channel"},
		})
		if err != nil {
			return classify("conversations.list", err)
		}
		for _, c := range channels {
			room := chat.Room{ID: c.ID, Name: c.Name, Joined: c.IsMember}
			byID[c.ID] = room
			byName[c.Name] = c.ID
		}
		if next == "" {
			break
		}
		cursor = next
	}
	p.mu.Lock()
	p.byID, p.byName = byID, byName
	p.mu.Unlock()
	return nil
}

// setMembership records that the bot joined or left a channel.
func (p *Provider) setMembership(ctx context.Context, channelID string, joined bool) {
	p.mu.Lock()
	room, ok := p.byID[channelID]
	if ok {
		room.Joined = joined
		p.byID[channelID] = room
	}
	p.mu.Unlock()
	if !ok {
		// A channel created after the list was read: learn its name.
		if err := p.refreshChannels(ctx); err != nil {
			p.log.Warn().Err(err).Str("channel", channelID).Msg("refreshing the channel list")
		}
	}
}

// roomName is how a channel is recorded: its name when known, else its id.
func (p *Provider) roomName(ctx context.Context, channelID string) string {
	p.mu.RLock()
	room, ok := p.byID[channelID]
	p.mu.RUnlock()
	if ok {
		return room.Name
	}
	if !isSlackID(channelID) {
		return channelID
	}
	info, err := p.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channelID})
	if err != nil || info.Name == "" {
		return channelID
	}
	p.mu.Lock()
	p.byID[channelID] = chat.Room{ID: channelID, Name: info.Name, Joined: info.IsMember}
	p.byName[info.Name] = channelID
	p.mu.Unlock()
	return info.Name
}

// CanPost implements chat.Provider: a channel the bot is a member of, or a
// user, by id (a direct message).
func (p *Provider) CanPost(to dispatch.Destination) bool {
	switch to.Kind {
	case pipeline.DestinationUser:
		return isUserID(to.Name)
	case pipeline.DestinationRoom:
		if isUserID(to.Name) {
			return true // a direct message's room is its person
		}
		p.mu.RLock()
		defer p.mu.RUnlock()
		id, ok := p.byName[strings.TrimPrefix(to.Name, "#")]
		if !ok {
			id = to.Name
		}
		return p.byID[id].Joined
	}
	return false
}

// LookupUser implements chat.Provider: a user id (users.info), or a name,
// display name or real name (users.list).
func (p *Provider) LookupUser(ctx context.Context, nameOrHandle string) (chat.User, error) {
	name := strings.TrimPrefix(nameOrHandle, "@")
	if isUserID(name) {
		u, err := p.api.GetUserInfoContext(ctx, name)
		if err != nil {
			if isSlackError(err, "user_not_found") {
				return chat.User{}, fmt.Errorf("slack user %s: %w", name, chat.ErrUnknownUser)
			}
			return chat.User{}, classify("users.info", err)
		}
		return chat.User{Handle: u.ID, DisplayName: displayName(*u)}, nil
	}
	users, err := p.api.GetUsersContext(ctx)
	if err != nil {
		return chat.User{}, classify("users.list", err)
	}
	for _, u := range users {
		if u.Deleted {
			continue
		}
		if strings.EqualFold(u.Name, name) || strings.EqualFold(u.Profile.DisplayName, name) || strings.EqualFold(u.RealName, name) {
			return chat.User{Handle: u.ID, DisplayName: displayName(u)}, nil
		}
	}
	return chat.User{}, fmt.Errorf("slack user %q: %w", nameOrHandle, chat.ErrUnknownUser)
}

func displayName(u slack.User) string {
	for _, n := range []string{u.Profile.DisplayName, u.RealName, u.Name} {
		if n != "" {
			return n
		}
	}
	return u.ID
}

// LookupRoom implements chat.Provider: a channel by name or id, reading
// the list again when it is not known yet.
func (p *Provider) LookupRoom(ctx context.Context, name string) (chat.Room, error) {
	name = strings.TrimPrefix(name, "#")
	if room, ok := p.cachedRoom(name); ok {
		return room, nil
	}
	if err := p.refreshChannels(ctx); err != nil {
		return chat.Room{}, err
	}
	if room, ok := p.cachedRoom(name); ok {
		return room, nil
	}
	return chat.Room{}, fmt.Errorf("slack channel #%s: %w", name, chat.ErrUnknownRoom)
}

func (p *Provider) cachedRoom(name string) (chat.Room, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if id, ok := p.byName[name]; ok {
		return p.byID[id], true
	}
	room, ok := p.byID[name]
	return room, ok
}

// isSlackID reports whether s looks like a Slack id (C024BE91L, U0G9QF9C6):
// an upper-case letter then upper-case letters and digits. Channel names
// are lower case, so the two never mix.
func isSlackID(s string) bool {
	if len(s) < 3 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isUserID(s string) bool { return isSlackID(s) && (s[0] == 'U' || s[0] == 'W') }

var _ chat.Provider = (*Provider)(nil)
var _ chat.PartFinder = (*Provider)(nil)

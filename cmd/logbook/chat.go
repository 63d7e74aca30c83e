package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/irc"
	"github.com/logbookhq/logbook/adapters/slack"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/internal/supervisor"
)

// slackConfig is LOGBOOK_SLACK_*. Slack runs when the bot token is set,
// over Socket Mode when the app token is set too, and over the Events API
// (POST /slack/events, /slack/commands, /slack/interactivity) when the
// signing secret is.
type slackConfig struct {
	AppToken      string // LOGBOOK_SLACK_APP_TOKEN (xapp-…): Socket Mode
	BotToken      string // LOGBOOK_SLACK_BOT_TOKEN (xoxb-…): the Web API
	SigningSecret string // LOGBOOK_SLACK_SIGNING_SECRET: checks Events API deliveries
	APIURL        string // LOGBOOK_SLACK_API_URL: another Web API base URL, for testing
	Threads       string // LOGBOOK_SLACK_THREADS: 1 answers in the thread of the request
}

func loadSlackConfig() slackConfig {
	return slackConfig{
		AppToken:      os.Getenv("LOGBOOK_SLACK_APP_TOKEN"),
		BotToken:      os.Getenv("LOGBOOK_SLACK_BOT_TOKEN"),
		SigningSecret: os.Getenv("LOGBOOK_SLACK_SIGNING_SECRET"),
		APIURL:        os.Getenv("LOGBOOK_SLACK_API_URL"),
		Threads:       os.Getenv("LOGBOOK_SLACK_THREADS"),
	}
}

func (c slackConfig) enabled() bool { return c.BotToken != "" }

func (c slackConfig) threads() bool { t, _ := strconv.ParseBool(c.Threads); return t }

func (c slackConfig) validate() []error {
	var errs []error
	if c.BotToken == "" && (c.AppToken != "" || c.SigningSecret != "") {
		errs = append(errs, errors.New("LOGBOOK_SLACK_BOT_TOKEN is required when LOGBOOK_SLACK_APP_TOKEN or LOGBOOK_SLACK_SIGNING_SECRET is set"))
	}
	if c.BotToken != "" && c.AppToken == "" && c.SigningSecret == "" {
		errs = append(errs, errors.New("LOGBOOK_SLACK_BOT_TOKEN is set, but neither LOGBOOK_SLACK_APP_TOKEN (Socket Mode) nor LOGBOOK_SLACK_SIGNING_SECRET (Events API) is: Slack could never deliver a message"))
	}
	if c.BotToken != "" && !strings.HasPrefix(c.BotToken, "xoxb-") {
		errs = append(errs, errors.New("LOGBOOK_SLACK_BOT_TOKEN should be a bot token starting xoxb-"))
	}
	if c.AppToken != "" && !strings.HasPrefix(c.AppToken, "xapp-") {
		errs = append(errs, errors.New("LOGBOOK_SLACK_APP_TOKEN should be an app-level token starting xapp-"))
	}
	if _, err := strconv.ParseBool(c.Threads); c.Threads != "" && err != nil {
		errs = append(errs, fmt.Errorf("LOGBOOK_SLACK_THREADS %q is not 1 or 0", c.Threads))
	}
	return errs
}

// ircSettings is LOGBOOK_IRC_*, read by irc.ConfigFromEnv: IRC runs when
// LOGBOOK_IRC_SERVER is set.
type ircSettings struct {
	cfg     irc.Config
	enabled bool
	err     error // every bad LOGBOOK_IRC_* setting, for config.Validate
}

func loadIRCSettings() ircSettings {
	cfg, enabled, err := irc.ConfigFromEnv(os.Getenv)
	return ircSettings{cfg: cfg, enabled: enabled, err: err}
}

// chatProviders are the providers the environment configures, and the HTTP
// routes those that receive over HTTP need (pattern → handler). Add a
// provider here: build it from cfg when its settings are present.
func chatProviders(cfg config, log zerolog.Logger) ([]chat.Provider, map[string]http.Handler, error) {
	var providers []chat.Provider
	routes := map[string]http.Handler{}

	// Slack: LOGBOOK_SLACK_* (adapters/slack).
	if cfg.Slack.enabled() {
		p, err := newSlackProvider(cfg.Slack, log)
		if err != nil {
			return nil, nil, err
		}
		providers = append(providers, p)
		routes["/slack/events"] = p.EventsHandler()
		routes["/slack/commands"] = p.CommandsHandler()
		routes["/slack/interactivity"] = p.InteractivityHandler()
	}

	// IRC: LOGBOOK_IRC_* (adapters/irc), when LOGBOOK_IRC_SERVER is set.
	if cfg.IRC.enabled {
		ircCfg := cfg.IRC.cfg
		ircCfg.Logger = log
		p, err := irc.New(ircCfg)
		if err != nil {
			return nil, nil, fmt.Errorf("irc: %w", err)
		}
		providers = append(providers, p)
	}

	return providers, routes, nil
}

// chatSet runs the configured providers next to the dispatcher.
type chatSet struct {
	providers map[string]chat.Provider
	routes    map[string]http.Handler
	publicURL string // the web UI's base URL, for transcript links
}

// configuredChat builds the chat providers the environment configures.
func configuredChat(cfg config, log zerolog.Logger) (*chatSet, error) {
	providers, routes, err := chatProviders(cfg, log)
	if err != nil {
		return nil, err
	}
	s, err := newChatSet(providers, routes)
	if err != nil {
		return nil, err
	}
	s.publicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if s.publicURL == "" {
		s.publicURL = "http://" + cfg.HTTPAddr
	}
	return s, nil
}

// transcriptURL is the web UI's page of a run's transcript.
func (s *chatSet) transcriptURL(runID string) string {
	return s.publicURL + "/runs/" + url.PathEscape(runID) + "/transcript"
}

func newChatSet(providers []chat.Provider, routes map[string]http.Handler) (*chatSet, error) {
	s := &chatSet{providers: map[string]chat.Provider{}, routes: routes}
	for _, p := range providers {
		name := p.Name()
		if name == "api" || name == "web" || s.providers[name] != nil {
			return nil, fmt.Errorf("chat provider %q is configured twice, or takes a reserved name (api, web)", name)
		}
		s.providers[name] = p
	}
	return s, nil
}

// canPost is the Facts' rule for where the bot may post: api and web
// requests answer their caller only; a chat provider says from what it
// knows (rooms it has joined).
func (s *chatSet) canPost(adapter string, to dispatch.Destination) bool {
	if adapter == "api" || adapter == "web" {
		return to.Kind == pipeline.DestinationUser
	}
	p, ok := s.providers[adapter]
	return ok && p.CanPost(to)
}

// start runs each provider that which picks as a part of sup, handing
// every message to the dispatcher. A provider that stops for good (a
// rejected token, a refused nick) stops the server: its settings need
// fixing.
func (s *chatSet) start(ctx context.Context, sup partStarter, d *dispatcher.Dispatcher, log zerolog.Logger, which func(chat.Provider) bool) {
	for _, name := range slices.Sorted(maps.Keys(s.providers)) {
		p := s.providers[name]
		if !which(p) {
			continue
		}
		plog := log.With().Str("provider", name).Logger()
		handler := chatHandler(d, plog)
		sup.Start(ctx, supervisor.Part{Name: "chat:" + name, Run: func(ctx context.Context) error {
			plog.Info().Msg("chat provider starting")
			err := p.Run(ctx, handler)
			if err != nil && ctx.Err() == nil {
				return supervisor.Permanent(fmt.Errorf("chat provider %s stopped; fix its settings: %w", name, err))
			}
			return err
		}})
	}
}

// sharedProvider says whether any number of servers may run the provider
// at once: Slack's Events API and Socket Mode spread deliveries over the
// servers (and a redelivery is recorded once), but IRC is one connection
// under one nick, which only the leader holds.
func sharedProvider(p chat.Provider) bool {
	_, single := p.(*irc.Provider)
	return !single
}

// receiver is what a chat provider's handler needs of the dispatcher.
type receiver interface {
	Receive(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error)
}

// chatHandler records each chat message as a request. An error tells the
// provider to deliver the message again, where it can; a message refused
// for good (it reuses the id of another sender's request) is logged and
// acknowledged, as delivering it again would be refused again.
func chatHandler(d receiver, log zerolog.Logger) chat.Handler {
	return func(ctx context.Context, m chat.Message) error {
		id, err := d.Receive(ctx, m.Received(), m.Provider+":"+m.User)
		if dispatch.KindOf(err) == dispatch.KindMessageIDTaken {
			log.Warn().Err(err).Str("message_id", m.MessageID).Str("user", m.User).Msg("a chat message refused: its id names another sender's request")
			return nil
		}
		if err != nil {
			log.Error().Err(err).Str("message_id", m.MessageID).Msg("recording a chat message")
			return err
		}
		log.Debug().Str("request_id", id).Str("room", m.Room).Msg("chat message recorded")
		return nil
	}
}

// ServeHTTP answers the providers' HTTP routes (Slack's Events API).
func (s *chatSet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := s.routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// withChat routes /slack/ to the chat providers' HTTP routes once the
// platform has started (503 before, so Slack retries the delivery), and
// everything else to next.
func (s *server) withChat(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("/slack/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		p := s.platform
		s.mu.RUnlock()
		if p == nil {
			http.Error(w, "Logbook is starting", http.StatusServiceUnavailable)
			return
		}
		p.chat.ServeHTTP(w, r)
	})
	return mux
}

// newSlackProvider builds Slack from LOGBOOK_SLACK_*.
func newSlackProvider(c slackConfig, log zerolog.Logger) (*slack.Provider, error) {
	return slack.New(slack.Config{
		BotToken: c.BotToken, AppToken: c.AppToken, SigningSecret: c.SigningSecret,
		APIURL: c.APIURL, Threads: c.threads(), Logger: log,
	})
}

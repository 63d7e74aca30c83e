package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
)

func TestSlackSettingsAreCheckedTogether(t *testing.T) {
	cases := []struct {
		name    string
		cfg     slackConfig
		mention string // "" when valid
	}{
		{"nothing set: Slack is off", slackConfig{}, ""},
		{"bot token and signing secret: the Events API", slackConfig{BotToken: "xoxb-1", SigningSecret: "s"}, ""},
		{"bot and app tokens: Socket Mode", slackConfig{BotToken: "xoxb-1", AppToken: "xapp-1", Threads: "1"}, ""},
		{"a secret without a bot token", slackConfig{SigningSecret: "s"}, "LOGBOOK_SLACK_BOT_TOKEN is required"},
		{"a bot token that could never receive", slackConfig{BotToken: "xoxb-1"}, "could never deliver"},
		{"a user token where a bot token belongs", slackConfig{BotToken: "xoxp-1", SigningSecret: "s"}, "xoxb-"},
		{"a bot token where the app token belongs", slackConfig{BotToken: "xoxb-1", AppToken: "xoxb-2"}, "xapp-"},
		{"threads neither 1 nor 0", slackConfig{BotToken: "xoxb-1", SigningSecret: "s", Threads: "sometimes"}, "LOGBOOK_SLACK_THREADS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := c.cfg.validate()
			if c.mention == "" {
				if len(errs) != 0 {
					t.Fatalf("validate = %v, want none", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), c.mention) {
				t.Fatalf("validate = %v, want an error mentioning %q", errs, c.mention)
			}
		})
	}
}

func TestChatSetDecidesWhereTheBotMayPost(t *testing.T) {
	// Given Slack configured (its channel list not yet read)
	set, err := configuredChat(config{HTTPAddr: "127.0.0.1:8080", Slack: slackConfig{BotToken: "xoxb-1", SigningSecret: "s"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	room := dispatch.Destination{Kind: pipeline.DestinationRoom, Name: "ops"}
	user := dispatch.Destination{Kind: pipeline.DestinationUser, Name: "U024BE7LH"}
	// Then api and web answer their caller only, whatever else is connected
	if !set.canPost("api", user) || set.canPost("api", room) || set.canPost("web", room) {
		t.Fatal("api and web must answer their caller only")
	}
	// And Slack answers from what it knows: a person, not a channel it never saw
	if !set.canPost("slack", user) || set.canPost("slack", room) {
		t.Fatal("Slack's CanPost was not asked")
	}
	// And a provider that is not configured can post nowhere
	if set.canPost("irc", room) {
		t.Fatal("an unconfigured provider may post")
	}
	if got := set.transcriptURL("run 1"); got != "http://127.0.0.1:8080/runs/run%201/transcript" {
		t.Fatalf("transcript URL = %s", got)
	}
	if _, ok := set.routes["/slack/events"]; !ok {
		t.Fatal("the Events API route is not mounted")
	}
}

// receiveFunc answers Receive with a function.
type receiveFunc func(dispatch.RequestReceived) error

func (f receiveFunc) Receive(_ context.Context, in dispatch.RequestReceived, _ string) (string, error) {
	return in.ID(), f(in)
}

func TestAChatMessageRefusedForGoodIsNotDeliveredAgain(t *testing.T) {
	t.Parallel()
	m := chat.Message{Provider: "slack", MessageID: "C1:1.0", Room: "C1", User: "U2", Text: "echo hi"}
	for _, c := range []struct {
		name      string
		err       error
		wantRetry bool
		wantLog   string
	}{
		{"a message recorded is acknowledged", nil, false, ""},
		{"a message under another sender's request id is acknowledged, and logged", dispatch.MessageIDTaken("slack", m.MessageID), false, "another sender's request"},
		{"a message that could not be recorded is delivered again", errors.New("the database is away"), true, "the database is away"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logged bytes.Buffer
			handle := chatHandler(receiveFunc(func(dispatch.RequestReceived) error { return c.err }), zerolog.New(&logged))
			if err := handle(context.Background(), m); (err != nil) != c.wantRetry {
				t.Fatalf("the handler returned %v; want a retry: %v", err, c.wantRetry)
			}
			if !strings.Contains(logged.String(), c.wantLog) {
				t.Fatalf("logged %q, want it to say %q", logged.String(), c.wantLog)
			}
		})
	}
}

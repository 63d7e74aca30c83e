package slack_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/slack"
	"github.com/logbookhq/logbook/adapters/slack/slacktest"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/chat"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/testenv"
)

type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

// Slack drops the connection after taking the second part of a reply, and
// answers the third with a 429: the dispatcher finds the second part in the
// channel's history instead of posting it again, waits out the rate limit,
// and every part is in #ops exactly once, in order.
func TestAReplyThroughSlackSurvivesADroppedConnectionAndA429(t *testing.T) {
	api := slacktest.New([]slacktest.Channel{{ID: "C0OPS", Name: "ops", Member: true}}, []slacktest.User{{ID: "U0ALICE", Name: "alice"}})
	defer api.Close()
	provider, err := slack.New(slack.Config{BotToken: "xoxb-t", SigningSecret: "s", APIURL: api.APIURL(), PostInterval: time.Millisecond, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: inProcessBuiltins(t, store, facts, nopPublisher{}), Facts: facts,
		Checkpoints: dispatcher.SQLCheckpoints{DB: store.WriteDB(), Rebind: sqlstore.RebindQuestion},
		Chat:        map[string]chat.Provider{slack.Name: provider},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)                                                                  //nolint:errcheck
	go provider.Run(ctx, func(context.Context, chat.Message) error { return nil }) //nolint:errcheck
	if _, err := dispatcher.Bootstrap(ctx, store); err != nil {
		t.Fatal(err)
	}
	var admin access.UserInfo
	testenv.Eventually(t, "the admin", func() bool { var ok bool; admin, ok = facts.UserByUsername("admin"); return ok })
	link := domain.MustEncode(access.ChatHandleLinked{User: admin.ID, Provider: slack.Name, Handle: "U0ALICE"}, domain.Metadata{Actor: "test"})
	if _, err := store.Append(ctx, access.UserStream(admin.ID), eventstore.Any, link); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the handle", func() bool { _, ok := facts.UserByHandle(slack.Name, "U0ALICE"); return ok })

	// Given a reply of three parts (three lines of about 3,000 bytes each)
	words := []string{strings.Repeat("a", 3000), strings.Repeat("b", 3000), strings.Repeat("c", 3000)}
	api.Fail("chat.postMessage",
		slacktest.Failure{},                                     // part 0 posts
		slacktest.Failure{DropAfterTaking: true},                // part 1 lands, its answer is lost
		slacktest.Failure{Status: 429, RetryAfter: time.Second}, // part 2 is rate-limited once
	)
	in := dispatch.RequestReceived{Adapter: slack.Name, MessageID: "C0OPS:1.1", Room: "ops", ChatUser: "U0ALICE", Text: "echo " + strings.Join(words, " ")}
	id, err := d.Receive(ctx, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.WaitForReply(t.Context(), id):
	case <-time.After(20 * time.Second):
		t.Fatalf("no reply; Slack has %d messages", len(api.Messages()))
	}
	msgs := api.Messages()
	if len(msgs) != 3 {
		t.Fatalf("Slack has %d messages, want the 3 parts once each", len(msgs))
	}
	for i, m := range msgs {
		if m.Metadata == nil || m.Metadata.EventPayload["part"] != float64(i) || !strings.Contains(m.Text, words[i][:10]) {
			t.Fatalf("message %d = %.40q… with %+v", i, m.Text, m.Metadata)
		}
	}
	events, err := store.ReadStream(ctx, dispatch.Stream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range events {
		if p, err := domain.Decode(e); err == nil {
			if posted, ok := p.(chat.ReplyPartPosted); ok && posted.Found {
				found++
			}
		}
	}
	if found != 1 {
		t.Fatalf("%d parts recorded found in the history, want 1 (the dropped one)", found)
	}
}

// inProcessBuiltins runs builtin runs on a builtin executor over store and
// facts, as serve's router does, and hands other messages to next.
func inProcessBuiltins(t testing.TB, store eventstore.Store, facts *dispatcher.Facts, next message.Publisher) message.Publisher {
	t.Helper()
	b, err := executor.NewBuiltinExecutor(executor.BuiltinConfig{Store: store, Builtins: facts.Builtins(), Facts: facts, Recorded: facts.ApplyRecorded})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return executor.InProcessBuiltins{Executor: b, Next: next}
}

package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/dispatcher"
	"github.com/logbookhq/logbook/dispatcher/admin"
	"github.com/logbookhq/logbook/dispatcher/scheduler"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/schedule"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/internal/testenv"
)

type noExecutor struct{}

func (noExecutor) Publish(string, ...*message.Message) error { return nil }
func (noExecutor) Close() error                              { return nil }

// startDispatcher runs the real dispatcher with the builtins on store,
// with the bootstrap admin.
func startDispatcher(t *testing.T, store eventstore.Store, checkpoints dispatcher.Checkpoints) *dispatcher.Dispatcher {
	t.Helper()
	adminBuiltins, err := admin.Builtins(admin.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	// The bot may post anywhere on irc: the chat provider is not what
	// these tests are about.
	canPost := func(adapter string, _ dispatch.Destination) bool { return adapter == "irc" }
	facts := dispatcher.NewFacts(dispatch.DefaultBuiltins().With(adminBuiltins...), dispatch.Settings{}, canPost)
	b, err := executor.NewBuiltinExecutor(executor.BuiltinConfig{Store: store, Builtins: facts.Builtins(), Facts: facts, Recorded: facts.ApplyRecorded})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Publisher: executor.InProcessBuiltins{Executor: b, Next: noExecutor{}}, Facts: facts, Checkpoints: checkpoints,
		Posters: map[string]dispatcher.ReplyPoster{dispatch.ScheduleAdapter: dispatcher.Posted{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dispatcher.Bootstrap(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		_ = b.Shutdown(context.Background())
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	testenv.Eventually(t, "the dispatcher to know the admin", func() bool {
		_, ok := facts.UserByUsername("admin")
		return ok
	})
	return d
}

// tick steps the runner at now and returns the reply to the tick's request.
func tick(t *testing.T, d *dispatcher.Dispatcher, r *scheduler.Runner, name string, now time.Time) dispatch.Reply {
	t.Helper()
	in := dispatch.RequestReceived{Adapter: dispatch.ScheduleAdapter, MessageID: schedule.TickMessageID("id-"+name, now), Sender: schedule.Sender(name)}
	wait := d.WaitForReply(t.Context(), in.ID())
	if err := r.Step(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	select {
	case reply := <-wait:
		return reply
	case <-time.After(10 * time.Second):
		t.Fatalf("no reply to the tick at %s", now)
		return dispatch.Reply{}
	}
}

func TestRevokingTheOwnersPermissionStopsTheSchedulesRuns(t *testing.T) {
	s := openStore(t)
	d := startDispatcher(t, s, dispatcher.SQLCheckpoints{DB: s.WriteDB(), Rebind: sqlstore.RebindQuestion})
	a := schedule.Added{ID: "id-report", Name: "report", Spec: "every 5m", Pipeline: "user list", Owner: "admin", Missed: schedule.MissedSkip, Anchor: anchor, By: "admin"}
	e, _ := domain.Encode(a, domain.Metadata{Actor: "admin"})
	if _, err := s.Append(context.Background(), schedule.Stream("report"), eventstore.NoStream, e); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, s, d)

	if reply := tick(t, d, r, "report", minutes(5)); reply.Failed {
		t.Fatalf("the first tick, with the permission: %s", reply.Text)
	}
	revoke, _ := domain.Encode(access.PermissionRevoked{Role: "admin", Permission: "logbook:manage_users"}, domain.Metadata{Actor: "admin"})
	if _, err := s.Append(context.Background(), access.RoleStream("admin"), eventstore.Any, revoke); err != nil {
		t.Fatal(err)
	}
	reply := tick(t, d, r, "report", minutes(10))
	if reply.Problem == nil || reply.Problem.Status != dispatch.StatusDenied || !strings.Contains(reply.Text, "logbook:manage_users") {
		t.Fatalf("the tick after the revoke: %+v", reply)
	}
	// It was denied before anything ran, and recorded as the schedule's.
	in := dispatch.RequestReceived{Adapter: dispatch.ScheduleAdapter, MessageID: schedule.TickMessageID("id-report", minutes(10)), Sender: schedule.Sender("report")}
	events, err := s.ReadStream(context.Background(), dispatch.Stream(in.ID()), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == "StageStarted" {
			t.Fatal("a stage started after the owner lost the permission")
		}
	}
	first, _ := domain.Decode(events[0])
	if rec := first.(dispatch.RequestReceived); rec.Source != "report" || rec.ChatUser != "admin" || rec.Adapter != "schedule" {
		t.Fatalf("recorded %+v", rec)
	}
}

// fromIRC sends text as the admin typed it in #ops on irc (their handle
// linked as "root") and returns the reply.
func fromIRC(t *testing.T, s eventstore.Store, d *dispatcher.Dispatcher, messageID, text string) dispatch.Reply {
	t.Helper()
	in := dispatch.RequestReceived{Adapter: "irc", MessageID: messageID, Room: "ops", ChatUser: "root", Text: text}
	wait := d.WaitForReply(t.Context(), in.ID())
	if _, err := d.Receive(context.Background(), in, "irc"); err != nil {
		t.Fatal(err)
	}
	select {
	case reply := <-wait:
		return reply
	case <-time.After(10 * time.Second):
		t.Fatalf("no reply to %q", text)
		return dispatch.Reply{}
	}
}

func linkAdminOnIRC(t *testing.T, s eventstore.Store) {
	t.Helper()
	events, err := s.ReadAll(context.Background(), 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if p, _ := domain.Decode(e); p != nil {
			if u, ok := p.(access.UserCreated); ok && u.Username == "admin" {
				link, _ := domain.Encode(access.ChatHandleLinked{User: u.User, Provider: "irc", Handle: "root"}, domain.Metadata{Actor: "admin"})
				if _, err := s.Append(context.Background(), access.UserStream(u.User), eventstore.Any, link); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
	}
	t.Fatal("no admin user")
}

func loadSchedule(t *testing.T, s eventstore.Store, name string) schedule.Schedule {
	t.Helper()
	state, err := (&dispatcher.Triggers{Store: s}).LoadSchedule(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func TestAScheduleAddedInChatPostsWhereItWasAddedAndRunsAsItsOwner(t *testing.T) {
	s := openStore(t)
	d := startDispatcher(t, s, dispatcher.SQLCheckpoints{DB: s.WriteDB(), Rebind: sqlstore.RebindQuestion})
	linkAdminOnIRC(t, s)

	reply := fromIRC(t, s, d, "m1", `schedule add "every 5m" 'echo hourly news' --name news`)
	if reply.Failed || !strings.Contains(reply.Text, "posted on irc to ops") {
		t.Fatalf("adding: %s", reply.Text)
	}
	added := loadSchedule(t, s, "news").Config()
	if added.Provider != "irc" || added.Room != "ops" || added.Owner != "admin" || added.Missed != schedule.MissedSkip {
		t.Fatalf("recorded %+v", added)
	}
	// The request's own redirect is the schedule's: its output goes there.
	reply = fromIRC(t, s, d, "m2", `schedule add "every 5m" 'echo deployed' --name deploys --tz Europe/Berlin > #deploys`)
	if reply.Failed {
		t.Fatalf("adding with a redirect: %s", reply.Text)
	}
	if got := loadSchedule(t, s, "deploys").Config(); got.Pipeline != "echo deployed > #deploys" || got.TZ != "Europe/Berlin" {
		t.Fatalf("recorded %+v", got)
	}
	// A secret never goes in a command.
	if reply := fromIRC(t, s, d, "m3", `trigger create hook --pipeline 'echo' --hmac-secret=hunter2hunter2`); !reply.Failed || !strings.Contains(reply.Text, "standard input") {
		t.Fatalf("a secret in chat: %s", reply.Text)
	}

	// The news schedule's tick runs as admin and answers in #ops on irc.
	r := newRunner(t, s, d)
	anchor := added.Anchor
	in := dispatch.RequestReceived{Adapter: dispatch.ScheduleAdapter, MessageID: schedule.TickMessageID(added.ID, anchor.Add(5*time.Minute)), Sender: schedule.Sender("news")}
	wait := d.WaitForReply(t.Context(), in.ID())
	if err := r.Step(context.Background(), anchor.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	select {
	case reply := <-wait:
		if reply.Adapter != "irc" || len(reply.To) != 1 || reply.To[0].Name != "ops" || reply.Text != "hourly news" {
			t.Fatalf("the tick's reply %+v", reply)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tick was not answered")
	}
}

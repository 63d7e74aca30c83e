package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/adapters/natsbus"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

func TestTheBusSettingsAreReadAndChecked(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, b busSettings)
	}{
		{name: "the defaults", env: map[string]string{"LOGBOOK_EXECUTOR_ID": "host-1"}, check: func(t *testing.T, b busSettings) {
			if b.URL != "" || b.Groups != nil || b.Slots != 4 || b.QueueTimeout != 30*time.Second || b.LostAfter != 15*time.Second || b.Heartbeat != 2*time.Second {
				t.Fatalf("%+v", b)
			}
		}},
		{name: "groups and timings", env: map[string]string{"LOGBOOK_BUS_URL": "nats://127.0.0.1:4222", "LOGBOOK_EXECUTOR_GROUPS": "prod, default",
			"LOGBOOK_EXECUTOR_ID": "exec-1", "LOGBOOK_QUEUE_TIMEOUT": "5s", "LOGBOOK_EXECUTOR_SLOTS": "8"}, check: func(t *testing.T, b busSettings) {
			if strings.Join(b.Groups, ",") != "prod,default" || b.QueueTimeout != 5*time.Second || b.Slots != 8 {
				t.Fatalf("%+v", b)
			}
		}},
		{name: "a URL that is not NATS", env: map[string]string{"LOGBOOK_BUS_URL": "http://user:secret@host"}, wantErr: "LOGBOOK_BUS_URL is not a nats://"},
		{name: "a group that cannot be a subject", env: map[string]string{"LOGBOOK_EXECUTOR_GROUPS": "prod.eu"}, wantErr: `relay group "prod.eu"`},
		{name: "an executor id with a wildcard", env: map[string]string{"LOGBOOK_EXECUTOR_ID": "exec*"}, wantErr: `LOGBOOK_EXECUTOR_ID "exec*"`},
		{name: "a queue timeout without a unit", env: map[string]string{"LOGBOOK_QUEUE_TIMEOUT": "30"}, wantErr: `LOGBOOK_QUEUE_TIMEOUT "30" is not a duration`},
		{name: "heartbeats slower than loss", env: map[string]string{"LOGBOOK_HEARTBEAT_INTERVAL": "20s"}, wantErr: "must be shorter than LOGBOOK_EXECUTOR_LOST_AFTER"},
		{name: "slots out of range", env: map[string]string{"LOGBOOK_EXECUTOR_SLOTS": "0"}, wantErr: "LOGBOOK_EXECUTOR_SLOTS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"LOGBOOK_BUS_URL", "LOGBOOK_EXECUTOR_GROUPS", "LOGBOOK_EXECUTOR_ID", "LOGBOOK_QUEUE_TIMEOUT", "LOGBOOK_EXECUTOR_SLOTS", "LOGBOOK_HEARTBEAT_INTERVAL", "LOGBOOK_EXECUTOR_LOST_AFTER"} {
				t.Setenv(k, tc.env[k])
			}
			c, err := loadConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the error shows the URL's password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c.Bus)
		})
	}
}

func TestKeyLinesAreReadWithTheirLineInErrors(t *testing.T) {
	key, err := runbus.NewGroupKey()
	if err != nil {
		t.Fatal(err)
	}
	good := "# relay keys\n\nprod " + runbus.EncodeKey(key.Public) + "\n"
	keys, err := parseKeyLines(strings.NewReader(good), "keys")
	if err != nil || len(keys) != 1 || *keys["prod"] != *key.Public {
		t.Fatalf("parse: %v %v", keys, err)
	}
	for text, want := range map[string]string{
		good + "prod\n": "keys line 4: want GROUP KEY",
		good + "Prod " + runbus.EncodeKey(key.Public): `keys line 4: relay group "Prod"`,
		good + "staging bm90IGEga2V5\n":               "keys line 4: not a base64 key of 32 bytes",
		good + good:                                   "keys line 6: relay group prod has a key already",
	} {
		if _, err := parseKeyLines(strings.NewReader(text), "keys"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

func FuzzParseKeyLines(f *testing.F) {
	key, err := runbus.NewGroupKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("prod " + runbus.EncodeKey(key.Public) + "\n")
	f.Add("# comment\n\ndefault " + runbus.EncodeKey(key.Private))
	f.Add("prod\n")
	f.Add("a b c\n")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := parseKeyLines(strings.NewReader(text), "keys")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "keys line ") && !strings.Contains(err.Error(), "token too long") {
				t.Fatalf("an error that names no line: %v", err)
			}
			return
		}
		for group, k := range keys {
			if k == nil || group == "" {
				t.Fatalf("group %q key %v", group, k)
			}
		}
	})
}

// A run event from NATS whose stream is behind it is nacked to be held in
// its lane (ErrHeldBack: neither retried in place nor poisoned), until its
// last try, when it is unprocessable as on the embedded bus.
func TestAnEventAheadOfItsStreamIsHeldBackUntilItsLastTry(t *testing.T) {
	ctx := context.Background()
	store := executortest.NewMemStore()
	runID := domain.NewEventID().String()
	for i, p := range []domain.Payload{run.RunRequested{RequestID: "r", Image: "i", Argv: []string{"x"}}, run.RunClaimed{Executor: "exec-a"}} {
		if _, err := store.Append(ctx, run.Stream(runID), eventstore.Exact(int64(i)-1), domain.MustEncode(p, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	b := &serverBus{desk: executor.NewClaimDesk(store, func(string) bool { return true })}
	handle := b.eventsHandler(store, nil)
	ahead := func(lastTry bool) *message.Message {
		ev := domain.MustEncode(run.OutputChunk{Seq: 3, Stream: run.Stdout, Bytes: []byte("x")}, domain.Metadata{})
		msg := executor.NewEventMessage(run.Stream(runID), 5, ev)
		msg.Metadata.Set(natsbus.MetaExecutor, "exec-a")
		if lastTry {
			msg.Metadata.Set(natsbus.MetaLastTry, "1")
		}
		msg.SetContext(ctx)
		return msg
	}
	if err := handle(ahead(false)); !errors.Is(err, executor.ErrHeldBack) || executor.Unprocessable(err) {
		t.Fatalf("an event ahead of its stream: %v", err)
	}
	if err := handle(ahead(true)); !errors.Is(err, executor.ErrStreamBehind) || !executor.Unprocessable(err) {
		t.Fatalf("its last try: %v", err)
	}
}

// A run's last events handed over together are appended in one commit;
// when they cannot be (here one names an executor that does not hold the
// run) the handler nacks them to be handed over one by one (ErrHeldBack),
// never poisons them together, and appends none.
func TestARunsEventsTogetherAreAppendedOrHandedBackWhole(t *testing.T) {
	ctx := context.Background()
	store := executortest.NewMemStore()
	runID := domain.NewEventID().String()
	for i, p := range []domain.Payload{run.RunRequested{RequestID: "r", Image: "i", Argv: []string{"x"}}, run.RunClaimed{Executor: "exec-a"}} {
		if _, err := store.Append(ctx, run.Stream(runID), eventstore.Exact(int64(i)-1), domain.MustEncode(p, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	b := &serverBus{desk: executor.NewClaimDesk(store, func(string) bool { return true })}
	handle := b.eventsHandler(store, nil)
	event := func(from string, version int64, p domain.Payload) *message.Message {
		msg := executor.NewEventMessage(run.Stream(runID), version, domain.MustEncode(p, domain.Metadata{}))
		msg.Metadata.Set(natsbus.MetaExecutor, from)
		msg.SetContext(ctx)
		return msg
	}
	stopped, succeeded := event("exec-a", 2, run.ContainerStopped{}), event("exec-a", 3, run.RunSucceeded{})
	err := handle(natsbus.NewRunEventsMessage(ctx, []*message.Message{stopped, event("exec-b", 3, run.RunSucceeded{})}))
	if !errors.Is(err, executor.ErrHeldBack) || executor.Unprocessable(err) {
		t.Fatalf("events together, one from another executor: %v", err)
	}
	if events, _ := store.ReadStream(ctx, run.Stream(runID), 0, 10); len(events) != 2 {
		t.Fatalf("%d events stored after a refusal, want the 2 before", len(events))
	}
	if err := handle(natsbus.NewRunEventsMessage(ctx, []*message.Message{stopped, succeeded})); err != nil {
		t.Fatal(err)
	}
	if events, _ := store.ReadStream(ctx, run.Stream(runID), 0, 10); len(events) != 4 || events[3].Type != "RunSucceeded" {
		t.Fatalf("stream after the events together: %+v", events)
	}
}

package natsbus_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/natsbus"
	"github.com/logbookhq/logbook/adapters/natsbus/natstest"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
	"github.com/logbookhq/logbook/internal/testenv"
)

func connect(t testing.TB, srv *natstest.Server, user, executorID string) *natsbus.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := natsbus.Connect(ctx, natsbus.Config{URL: srv.URL, User: user, Password: srv.PasswordOf(user), ExecutorID: executorID,
		AckWait: 3 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func serverConn(t testing.TB, srv *natstest.Server) *natsbus.Conn {
	c := connect(t, srv, natstest.ServerUser, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15s")
		return nil
	}
}

// A run request goes to its relay group's executor only, its secrets sealed
// on the way (the stream holds no clear value), opened by the group's key.
func TestRunRequestReachesItsGroupSealed(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"prod"}}, natstest.Executor{ID: "exec-b", Groups: []string{"default"}})
	server := serverConn(t, srv)
	key, err := runbus.NewGroupKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := natsbus.NewPublisher(server, natsbus.PublisherConfig{Source: "server", Seal: func(group string, r *runbus.RunRequest) error {
		if group != "prod" {
			t.Errorf("sealed for group %q", group)
		}
		return r.Seal(key.Public)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	execA := connect(t, srv, "exec-a", "exec-a")
	subA, err := natsbus.NewSubscriber(execA, natsbus.SubscriberConfig{Groups: []string{"prod"}, Slots: 2,
		Open: func(_ string, r *runbus.RunRequest) error { return r.Open(key) }})
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Close()
	execB := connect(t, srv, "exec-b", "exec-b")
	subB, err := natsbus.NewSubscriber(execB, natsbus.SubscriberConfig{Groups: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()

	const secret = "s3cr3t-value-of-prod"
	runID := domain.NewEventID().String()
	msg, err := runbus.NewRunRequestMessage(runbus.RunRequest{RunID: runID, Request: run.RunRequested{RequestID: "r1", Group: "prod"}, Env: map[string]string{"TOKEN": secret}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(runbus.TopicRunRequested, msg); err != nil {
		t.Fatal(err)
	}
	// What NATS keeps on disk holds no clear secret.
	stream, err := server.JS.Stream(ctx, natsbus.RunsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(ctx, natsbus.RunsSubject("prod"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Data), secret) {
		t.Fatalf("the stream holds the secret in the clear: %s", raw.Data)
	}

	chA, err := subA.Subscribe(ctx, runbus.TopicRunRequested)
	if err != nil {
		t.Fatal(err)
	}
	chB, err := subB.Subscribe(ctx, runbus.TopicRunRequested)
	if err != nil {
		t.Fatal(err)
	}
	got := receive(t, chA)
	req, err := runbus.DecodeRunRequest(got)
	if err != nil {
		t.Fatal(err)
	}
	if req.RunID != runID || req.Env["TOKEN"] != secret {
		t.Fatalf("executor of prod got run %s with env %v", req.RunID, req.Env)
	}
	got.Ack()
	select {
	case m := <-chB:
		t.Fatalf("the default group's executor got a prod run: %s", m.Payload)
	default:
	}
	// Acked: the work queue no longer holds it.
	testenv.Eventually(t, "the run request to leave the work queue", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}

// Given two run requests, one marked just requested by the dispatcher in
// this process, when the server publishes both, then only the marked one
// is told to JustRequested (the claim desk's hook), and neither arrives
// marked: the mark never crosses NATS.
func TestOnlyARunRequestJustRequestedHereIsToldToTheClaimDesk(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-b", Groups: []string{"default"}})
	var told []string
	pub, err := natsbus.NewPublisher(serverConn(t, srv), natsbus.PublisherConfig{Source: "server",
		JustRequested: func(r runbus.RunRequest) { told = append(told, r.RunID) }})
	if err != nil {
		t.Fatal(err)
	}
	marked, plain := domain.NewEventID().String(), domain.NewEventID().String()
	for _, req := range []runbus.RunRequest{
		runbus.RunRequest{RunID: marked, Request: run.RunRequested{RequestID: "r1"}}.JustRequested(),
		{RunID: plain, Request: run.RunRequested{RequestID: "r2"}},
	} {
		msg, err := runbus.NewRunRequestMessage(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(runbus.TopicRunRequested, msg); err != nil {
			t.Fatal(err)
		}
	}
	if len(told) != 1 || told[0] != marked {
		t.Fatalf("told the desk of %v, want only %s", told, marked)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := natsbus.NewSubscriber(connect(t, srv, "exec-b", "exec-b"), natsbus.SubscriberConfig{Groups: []string{"default"}, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, runbus.TopicRunRequested)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got := receive(t, ch)
		req, err := runbus.DecodeRunRequest(got)
		if err != nil {
			t.Fatal(err)
		}
		if req.TakeJustRequested() {
			t.Fatalf("run %s arrived marked just requested", req.RunID)
		}
		got.Ack()
	}
}

// Run events come back in order per run, tagged with the executor NATS
// authenticated; another executor cannot publish under its name; a nacked
// event comes again before the run's next.
func TestRunEventsComeBackInOrderTaggedWithTheirExecutor(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}}, natstest.Executor{ID: "exec-b", Groups: []string{"default"}})
	server := serverConn(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	execA := connect(t, srv, "exec-a", "exec-a")
	pubA, err := natsbus.NewPublisher(execA, natsbus.PublisherConfig{Source: "exec-a"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := natsbus.NewSubscriber(server, natsbus.SubscriberConfig{Lanes: 4, Retry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	events, err := sub.Subscribe(ctx, executor.TopicRunEvents)
	if err != nil {
		t.Fatal(err)
	}
	runs := []string{domain.NewEventID().String(), domain.NewEventID().String()}
	const perRun = 20
	for i := range perRun {
		for _, r := range runs {
			ev := domain.NewEvent{ID: domain.NewEventID(), Type: "OutputChunk", Data: []byte(`{"seq":` + strconv.Itoa(i) + `}`)}
			if err := pubA.Publish(executor.TopicRunEvents, executor.NewEventMessage(run.Stream(r), int64(i), ev)); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := map[string]int64{}
	nacked := false
	for range 2*perRun + 1 {
		m := receive(t, events)
		stream, version, _, err := executor.DecodeEventMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		if who := m.Metadata.Get(natsbus.MetaExecutor); who != "exec-a" {
			t.Fatalf("event tagged with executor %q", who)
		}
		if version != next[stream] {
			t.Fatalf("%s: version %d arrived where %d was next", stream, version, next[stream])
		}
		if version == 5 && !nacked {
			nacked = true
			m.Nack()
			continue
		}
		next[stream]++
		m.Ack()
	}
	for _, r := range runs {
		if next[run.Stream(r)] != perRun {
			t.Fatalf("%s: %d events of %d", r, next[run.Stream(r)], perRun)
		}
	}

	// exec-b may not publish on exec-a's subjects.
	execB := connect(t, srv, "exec-b", "exec-b")
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	_, err = execB.JS.Publish(pctx, "logbook.events.exec-a."+runs[0], []byte("{}"))
	if err == nil {
		t.Fatal("exec-b published an event under exec-a's name")
	}
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !strings.Contains(strings.ToLower(err.Error()), "permission") && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec-b's publish failed, but not for permissions: %v", err)
	}
}

func TestWrongCredentialsAreRefused(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := natsbus.Connect(ctx, natsbus.Config{URL: srv.URL, User: "exec-a", Password: "wrong", Logger: zerolog.Nop()})
	if !errors.Is(err, natsbus.ErrRefused) {
		t.Fatalf("connect with a wrong password: %v, want ErrRefused", err)
	}
}

// A run request every executor nacks is delivered MaxDeliver times, then
// parked on the poison stream, taken off the work queue, and its run fails
// saying so.
func TestARunRequestPastMaxDeliverIsPoisonedAndItsRunFails(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server, err := natsbus.Connect(ctx, natsbus.Config{URL: srv.URL, User: natstest.ServerUser, Password: srv.PasswordOf(natstest.ServerUser),
		AckWait: time.Second, MaxDeliver: 2, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := server.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	store := executortest.NewMemStore()
	var fleet *executor.Fleet
	desk := executor.NewClaimDesk(store, func(id string) bool { return fleet.Live(id) })
	fleet, err = executor.NewFleet(executor.FleetConfig{Store: store, Desk: desk})
	if err != nil {
		t.Fatal(err)
	}
	service := &natsbus.FleetService{Conn: server, Desk: desk, Fleet: fleet}
	serviceDone := make(chan error, 1)
	go func() { serviceDone <- service.Run(ctx) }()
	defer func() { cancel(); <-serviceDone }()

	runID := domain.NewEventID().String()
	requested := run.RunRequested{RequestID: "r1", Image: "img", Argv: []string{"x"}}
	if _, err := store.Append(ctx, run.Stream(runID), eventstore.NoStream, domain.MustEncode(requested, domain.Metadata{})); err != nil {
		t.Fatal(err)
	}
	pub, err := natsbus.NewPublisher(server, natsbus.PublisherConfig{Source: "server"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := runbus.NewRunRequestMessage(runbus.RunRequest{RunID: runID, Request: requested})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(runbus.TopicRunRequested, msg); err != nil {
		t.Fatal(err)
	}
	execA := connect(t, srv, "exec-a", "exec-a")
	sub, err := natsbus.NewSubscriber(execA, natsbus.SubscriberConfig{Groups: []string{"default"}, Retry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, runbus.TopicRunRequested)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		receive(t, ch).Nack()
	}
	testenv.Eventually(t, "the run to fail", func() bool {
		events, _ := store.ReadStream(ctx, run.Stream(runID), 0, 10)
		return len(events) == 2 && events[1].Type == "RunFailed" && strings.Contains(string(events[1].Data), "delivered 2 times")
	})
	poison, err := server.JS.Stream(ctx, natsbus.PoisonStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := poison.GetLastMsgForSubject(ctx, "logbook.poison.server")
	if err != nil || !strings.Contains(string(raw.Data), runID) || raw.Header.Get("Logbook-Poison-Reason") == "" {
		t.Fatalf("poison stream: %v %+v", err, raw)
	}
	runs, err := server.JS.Stream(ctx, natsbus.RunsStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := runs.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("the work queue still holds %d messages (%v)", info.State.Msgs, err)
	}
}

// An executor may authenticate with an nkey; a seed file others may read is
// refused before it is used.
func TestAnExecutorAuthenticatesWithAnNKey(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-k", Groups: []string{"default"}, NKey: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := natsbus.Connect(ctx, natsbus.Config{URL: srv.URL, NKeySeedFile: srv.SeedFile("exec-k"), ExecutorID: "exec-k", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("connect with the nkey: %v", err)
	}
	defer c.Close()
	if err := c.NC.Publish("logbook.heartbeat.exec-k", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := c.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(srv.SeedFile("exec-k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbus.Connect(ctx, natsbus.Config{URL: srv.URL, NKeySeedFile: srv.SeedFile("exec-k"), Logger: zerolog.Nop()}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a seed others may read: %v", err)
	}
}

// A pipelined publisher's events (not each acknowledged before the next)
// reach the appender in order per run, and Settle returns once they are
// all in the stream. Events of a run that reach the stream out of order
// (one published again after its acknowledgement was lost) are held back
// in their lane and handed over in version order, without holding up
// another run of the lane.
func TestPipelinedEventsAndEventsOutOfOrderAreHandedOverInOrder(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	server := serverConn(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	execA := connect(t, srv, "exec-a", "exec-a")
	pipelined, err := natsbus.NewPublisher(execA, natsbus.PublisherConfig{Source: "exec-a", Pipelined: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := natsbus.NewPublisher(execA, natsbus.PublisherConfig{Source: "exec-a"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := natsbus.NewSubscriber(server, natsbus.SubscriberConfig{Lanes: 1, Retry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	events, err := sub.Subscribe(ctx, executor.TopicRunEvents)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(p *natsbus.Publisher, runID string, version int) {
		t.Helper()
		ev := domain.NewEvent{ID: domain.NewEventID(), Type: "OutputChunk", Data: []byte(`{"seq":` + strconv.Itoa(version) + `}`)}
		if err := p.Publish(executor.TopicRunEvents, executor.NewEventMessage(run.Stream(runID), int64(version), ev)); err != nil {
			t.Fatal(err)
		}
	}
	reordered := domain.NewEventID().String()
	publish(plain, reordered, 1)
	publish(plain, reordered, 0)
	runs := []string{domain.NewEventID().String(), domain.NewEventID().String()}
	const perRun = 20
	for i := range perRun {
		for _, r := range runs {
			publish(pipelined, r, i)
		}
	}
	settleCtx, settleCancel := context.WithTimeout(ctx, 15*time.Second)
	defer settleCancel()
	for _, r := range runs {
		if err := pipelined.Settle(settleCtx, r); err != nil {
			t.Fatalf("settle %s: %v", r, err)
		}
	}

	// The handler takes only the version each stream needs next, as the
	// appender does; the first delivery of the reordered run is version 1.
	want := map[string]int64{run.Stream(reordered): 2, run.Stream(runs[0]): perRun, run.Stream(runs[1]): perRun}
	next := map[string]int64{}
	var order []int64
	deadline := time.Now().Add(30 * time.Second)
	for done := 0; done < len(want); {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %v of %v; the reordered run's deliveries: %v", next, want, order)
		}
		m := receive(t, events)
		stream, version, _, err := executor.DecodeEventMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		if stream == run.Stream(reordered) {
			order = append(order, version)
		}
		if version != next[stream] {
			m.Nack()
			continue
		}
		m.Ack()
		if next[stream]++; next[stream] == want[stream] {
			done++
		}
	}
	if len(order) < 3 || order[0] != 1 || order[len(order)-2] != 0 || order[len(order)-1] != 1 {
		t.Fatalf("the reordered run's deliveries: %v, want 1 first, then 0 and 1", order)
	}
}

// execAPublishing starts nats-server with executor exec-a, and returns the
// server's connection and exec-a's publisher of run events (not
// pipelined), with a context that ends with the test.
func execAPublishing(t *testing.T) (context.Context, *natsbus.Conn, *natsbus.Publisher) {
	t.Helper()
	srv := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	server := serverConn(t, srv)
	pub, err := natsbus.NewPublisher(connect(t, srv, "exec-a", "exec-a"), natsbus.PublisherConfig{Source: "exec-a"})
	if err != nil {
		t.Fatal(err)
	}
	return t.Context(), server, pub
}

// oneLaneEvents are the run events the server's subscriber hands over
// through one lane, which gives a refused message again only when its
// run's next one arrives (Retry is an hour).
func oneLaneEvents(t *testing.T, ctx context.Context, server *natsbus.Conn) <-chan *message.Message {
	t.Helper()
	sub, err := natsbus.NewSubscriber(server, natsbus.SubscriberConfig{Lanes: 1, Retry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	events, err := sub.Subscribe(ctx, executor.TopicRunEvents)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// A run's last events, which the executor sends in one message
// (executor.GroupPublisher), reach the server's handler together, in
// order, each naming the executor the subject names whatever its own
// metadata says. When the handler refuses them together they come one by
// one, and when it refuses one of those the whole message comes again
// later, together first.
func TestARunsEventsSentTogetherAreHandedOverTogetherAndOneByOneWhenRefused(t *testing.T) {
	ctx, server, plain := execAPublishing(t)
	pub := executor.GroupPublisher{Publisher: plain}
	event := func(runID string, version int) *message.Message {
		ev := domain.NewEvent{ID: domain.NewEventID(), Type: "OutputChunk", Data: []byte(`{"seq":` + strconv.Itoa(version) + `}`)}
		return executor.NewEventMessage(run.Stream(runID), int64(version), ev)
	}
	publish := func(runID string, versions ...int) {
		t.Helper()
		var msgs []*message.Message
		for _, v := range versions {
			m := event(runID, v)
			// An executor cannot speak for another, nor ask for a last try.
			m.Metadata.Set(natsbus.MetaExecutor, "exec-b")
			m.Metadata.Set(natsbus.MetaLastTry, "1")
			msgs = append(msgs, m)
		}
		if err := pub.Publish(executor.TopicRunEvents, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	r, other := domain.NewEventID().String(), domain.NewEventID().String()
	publish(r, 0)
	publish(r, 1, 2, 3)
	publish(other, 0)
	publish(r, 4, 5)
	// All are in the stream before the server reads it, and a refused
	// message is retried only when its run's next one arrives (Retry is
	// an hour), so the order below does not depend on timing.
	events := oneLaneEvents(t, ctx, server)
	take := func(ack bool) string {
		t.Helper()
		m := receive(t, events)
		msgs, err := natsbus.RunEvents(m)
		if err != nil {
			t.Fatal(err)
		}
		together := msgs != nil
		if !together {
			msgs = []*message.Message{m}
		}
		var got []string
		for _, e := range msgs {
			stream, version, _, err := executor.DecodeEventMessage(e)
			if err != nil {
				t.Fatal(err)
			}
			if e.Metadata.Get(natsbus.MetaExecutor) != "exec-a" || e.Metadata.Get(natsbus.MetaLastTry) != "" {
				t.Fatalf("event %s of %s names executor %q, last try %q", e.UUID, stream, e.Metadata.Get(natsbus.MetaExecutor), e.Metadata.Get(natsbus.MetaLastTry))
			}
			name := "r"
			if stream == run.Stream(other) {
				name = "other"
			}
			got = append(got, name+strconv.FormatInt(version, 10))
		}
		if ack {
			m.Ack()
		} else {
			m.Nack()
		}
		if together {
			return "[" + strings.Join(got, " ") + "]"
		}
		return got[0]
	}
	var order []string
	for _, ack := range []bool{true, false, true, true, false, true, true, true} {
		order = append(order, take(ack))
	}
	want := "r0 [r1 r2 r3] r1 r2 r3 other0 [r1 r2 r3] [r4 r5]"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("handed over %s\nwant        %s", got, want)
	}
}

// A message an executor marks as a run's events together is refused whole
// when it does not read as events of the run its subject names, and never
// taken as one event; one too large for NATS goes as its events, one by
// one.
func TestRunEventsTogetherThatDoNotReadAreRefusedAndTooManyGoOneByOne(t *testing.T) {
	ctx, server, pub := execAPublishing(t)
	events := oneLaneEvents(t, ctx, server)
	event := func(runID string, version int, pad int) *message.Message {
		ev := domain.NewEvent{ID: domain.NewEventID(), Type: "OutputChunk",
			Data: []byte(`{"seq":` + strconv.Itoa(version) + `,"pad":"` + strings.Repeat("x", pad) + `"}`)}
		return executor.NewEventMessage(run.Stream(runID), int64(version), ev)
	}
	refused := func(what string) {
		t.Helper()
		m := receive(t, events)
		if _, err := natsbus.RunEvents(m); !errors.Is(err, runbus.ErrBadMessage) {
			t.Fatalf("%s: handed over with %v, want a bad message", what, err)
		}
		m.Ack()
	}

	garbage := message.NewMessage(domain.NewEventID().String(), []byte("not events"))
	garbage.Metadata.Set(natsbus.MetaRunEvents, "2")
	garbage.Metadata.Set("stream", run.Stream(domain.NewEventID().String()))
	garbage.Metadata.Set("version", "0")
	if err := pub.Publish(executor.TopicRunEvents, garbage); err != nil {
		t.Fatal(err)
	}
	refused("a payload that is not events")

	r, elsewhere := domain.NewEventID().String(), domain.NewEventID().String()
	misfiled, err := executor.NewRunEventsMessage([]*message.Message{event(elsewhere, 0, 0), event(elsewhere, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	misfiled.Metadata.Set("stream", run.Stream(r)) // the subject names r
	if err := pub.Publish(executor.TopicRunEvents, misfiled); err != nil {
		t.Fatal(err)
	}
	refused("events of another run than the subject's")

	big := []*message.Message{event(r, 0, 400_000), event(r, 1, 400_000), event(r, 2, 400_000)}
	if err := (executor.GroupPublisher{Publisher: pub}).Publish(executor.TopicRunEvents, big...); err != nil {
		t.Fatal(err)
	}
	for v := range int64(3) {
		m := receive(t, events)
		if msgs, err := natsbus.RunEvents(m); msgs != nil || err != nil {
			t.Fatalf("a group too large for NATS handed over together (%d events, %v)", len(msgs), err)
		}
		if _, version, _, err := executor.DecodeEventMessage(m); err != nil || version != v {
			t.Fatalf("event %d handed over as version %d (%v)", v, version, err)
		}
		m.Ack()
	}
}

package natsbus_test

import (
	"context"
	"errors"
	"os"
	"slices"
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

// A run's last events, each but the last marked MetaMore, reach the
// server's handler as one message carrying them in order, each with its
// executor; another run's event that arrives between them comes after.
// When the handler refuses them together, they come again one by one.
func TestARunsLastEventsAreHandedOverTogetherAndOneByOneWhenRefused(t *testing.T) {
	srv := natstest.Start(t, natstest.Executor{ID: "exec-a", Groups: []string{"default"}})
	server := serverConn(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	execA := connect(t, srv, "exec-a", "exec-a")
	pub, err := natsbus.NewPublisher(execA, natsbus.PublisherConfig{Source: "exec-a"})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(runID string, version int, more bool) {
		t.Helper()
		ev := domain.NewEvent{ID: domain.NewEventID(), Type: "OutputChunk", Data: []byte(`{"seq":` + strconv.Itoa(version) + `}`)}
		msg := executor.NewEventMessage(run.Stream(runID), int64(version), ev)
		if more {
			msg.Metadata.Set(executor.MetaMore, "1")
		}
		if err := pub.Publish(executor.TopicRunEvents, msg); err != nil {
			t.Fatal(err)
		}
	}
	var events <-chan *message.Message
	type got struct {
		stream   string
		versions []int64
	}
	take := func(ack bool) got {
		t.Helper()
		m := receive(t, events)
		msgs := natsbus.RunEvents(m)
		if msgs == nil {
			msgs = []*message.Message{m}
		}
		var g got
		for _, e := range msgs {
			stream, version, _, err := executor.DecodeEventMessage(e)
			if err != nil {
				t.Fatal(err)
			}
			if e.Metadata.Get(natsbus.MetaExecutor) != "exec-a" {
				t.Fatalf("event %s of %s names executor %q", e.UUID, stream, e.Metadata.Get(natsbus.MetaExecutor))
			}
			g.stream, g.versions = stream, append(g.versions, version)
		}
		if ack {
			m.Ack()
		} else {
			m.Nack()
		}
		return g
	}
	check := func(g got, stream string, versions ...int64) {
		t.Helper()
		if g.stream != stream || !slices.Equal(g.versions, versions) {
			t.Fatalf("handed over %s %v, want %s %v", g.stream, g.versions, stream, versions)
		}
	}

	r, other := domain.NewEventID().String(), domain.NewEventID().String()
	publish(r, 0, false)
	publish(r, 1, true)
	publish(other, 0, false)
	publish(r, 2, true)
	publish(r, 3, false)
	publish(r, 4, true)
	publish(r, 5, false)
	// All are in the stream before the server reads it, so no wait for a
	// marked event's successor depends on how fast they were published.
	sub, err := natsbus.NewSubscriber(server, natsbus.SubscriberConfig{Lanes: 1, Retry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	events, err = sub.Subscribe(ctx, executor.TopicRunEvents)
	if err != nil {
		t.Fatal(err)
	}
	check(take(true), run.Stream(r), 0)
	check(take(false), run.Stream(r), 1, 2, 3)
	for v := range int64(3) {
		check(take(true), run.Stream(r), v+1)
	}
	check(take(true), run.Stream(other), 0)
	check(take(true), run.Stream(r), 4, 5)
}

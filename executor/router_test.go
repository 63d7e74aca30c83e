package executor_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

func TestRoutedRunRequestEndsAsAStoredStream(t *testing.T) {
	t.Parallel()
	log := zerolog.New(zerolog.NewTestWriter(t))
	store := executortest.NewMemStore()
	bus := executor.NewEmbeddedBus(log)
	defer bus.Close()
	router, err := executor.NewRouter(executor.RouterConfig{PoisonPublisher: bus.Commands, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e, err := executor.NewExecutorWithConfig(executor.Config{
		Runtime: &fakeRuntime{fn: echoRun("routed\n", executor.Outcome{})}, Publisher: bus.Events, Store: store, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.AddHandlers(router, bus.Commands, bus.Commands)
	executor.NewAppender(store).AddHandler(router, bus.Events)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-router.Running()

	msg, err := executor.NewRunRequestMessage(request("routed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Commands.Publish(executor.TopicRunRequested, msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		got := store.Payloads("run-routed")
		if n := len(got); n > 0 && got[n-1].EventType() == "ContainerRemoved" {
			if types(got) != "RunRequested ContainerCreated ContainerStarted OutputChunk ContainerStopped RunSucceeded ContainerRemoved" {
				t.Fatalf("events = %s", types(got))
			}
			if _, ok := got[5].(run.RunSucceeded); !ok {
				t.Fatalf("terminal = %T", got[5])
			}
			_ = e.Shutdown(context.Background())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the routed run did not reach the store: %s", types(store.Payloads("run-routed")))
}

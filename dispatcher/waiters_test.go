package dispatcher

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// emptyLog is a store with no events: every request waited for is new.
type emptyLog struct{ eventstore.Store }

func (emptyLog) ReadStream(context.Context, string, int64, int) ([]domain.RecordedEvent, error) {
	return nil, nil
}

type noCheckpoints struct{}

func (noCheckpoints) Load(context.Context, string) (int64, error) { return 0, nil }
func (noCheckpoints) Save(context.Context, string, int64) error   { return nil }

type noBus struct{}

func (noBus) Publish(string, ...*message.Message) error { return nil }
func (noBus) Close() error                              { return nil }

func newIdleDispatcher(t *testing.T) *Dispatcher {
	t.Helper()
	d, err := New(Config{Store: emptyLog{}, Checkpoints: noCheckpoints{}, Publisher: noBus{},
		Facts: NewFacts(dispatch.DefaultBuiltins(), dispatch.Settings{}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *Dispatcher) waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ws := range d.waiters {
		n += len(ws)
	}
	return n
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestAbandonedWaitsForRepliesLeaveNothingBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newIdleDispatcher(t)
		before := heapInUse()
		// When 20,000 callers wait for a reply and leave before it comes,
		const callers = 20000
		for i := range callers {
			ctx, leave := context.WithCancel(t.Context())
			d.WaitForReply(ctx, fmt.Sprintf("request-%d", i))
			leave()
			if i%100 == 99 {
				synctest.Wait() // the unsubscribing of those that left has run
			}
		}
		synctest.Wait()
		// then the heap is about where it was, and no waiter is left.
		grew := int64(heapInUse()) - int64(before)
		if n := d.waiting(); n != 0 {
			t.Errorf("%d of %d abandoned waits are still registered", n, callers)
		}
		if grew > 256<<10 {
			t.Errorf("the heap grew by %d bytes over %d abandoned waits", grew, callers)
		}
	})
}

func TestAWaitHandedItsReplyIsUnregistered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newIdleDispatcher(t)
		reply := d.WaitForReply(t.Context(), "request-1")
		other := d.WaitForReply(t.Context(), "request-2")
		d.notify("request-1", dispatch.Reply{Text: "done"})
		if got := <-reply; got.Text != "done" {
			t.Fatalf("the reply handed over is %+v", got)
		}
		if n := d.waiting(); n != 1 {
			t.Fatalf("%d waits registered after one was answered, want the other one", n)
		}
		select {
		case r := <-other:
			t.Fatalf("another request's wait received %+v", r)
		default:
		}
	})
}

// A request refused before it is recorded leaves no wait behind.
func TestARefusedReceiveAndWaitLeavesNoWait(t *testing.T) {
	d := newIdleDispatcher(t)
	in := dispatch.RequestReceived{Adapter: "api", MessageID: "m-1", Room: "api", ChatUser: "mallory", Text: "echo hi", Sender: "mallory"}
	if _, replies, err := d.ReceiveAndWait(t.Context(), t.Context(), in, "admin"); err == nil || replies != nil {
		t.Fatalf("a request naming another sender than its actor = %v, %v; want refused", replies, err)
	}
	if n := d.waiting(); n != 0 {
		t.Fatalf("%d waits registered after a refused request, want none", n)
	}
}

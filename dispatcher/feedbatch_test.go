package dispatcher_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/internal/testenv"
)

// completionsStore counts the RequestCompleted of each append the
// dispatcher makes, and refuses the first that holds more than one when
// refuseBatch is set.
type completionsStore struct {
	eventstore.Store
	mu          sync.Mutex
	perAppend   []int // RequestCompleted per append that held any
	refuseBatch bool
}

func (s *completionsStore) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	completed := eventsOfType(parts, "RequestCompleted")
	s.mu.Lock()
	if completed > 0 {
		s.perAppend = append(s.perAppend, completed)
	}
	refuse := s.refuseBatch && completed > 1
	if refuse {
		s.refuseBatch = false
	}
	s.mu.Unlock()
	if refuse {
		return nil, errBatchRefused
	}
	return s.Store.AppendMulti(ctx, parts...)
}

func (s *completionsStore) appends() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.perAppend)
}

// runsEndingTogether starts a dispatcher over a completionsStore, sends one
// container command for each marker and waits until each run is requested;
// it returns the store underneath, the counting one, and the replies to
// come, by marker.
func runsEndingTogether(t *testing.T, markers []string, refuseBatch bool) (*sqlite.Store, *completionsStore, map[string]<-chan dispatch.Reply) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	counted := &completionsStore{Store: store, refuseBatch: refuseBatch}
	d := startWithSampleBundle(t, store, counted, nil)
	replies := map[string]<-chan dispatch.Reply{}
	for _, m := range markers {
		in := dispatch.RequestReceived{Adapter: "api", MessageID: m, Room: "api", ChatUser: "admin", Text: "toolbox:echo " + m, Sender: "admin"}
		replies[m] = d.WaitForReply(t.Context(), in.ID())
		if _, err := d.Receive(ctx, in, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range markers {
		runID := dispatch.RunID(apiRequestID("admin", m), 0, 0)
		testenv.Eventually(t, "the run of "+m+" requested", func() bool {
			events, err := store.ReadStream(ctx, run.Stream(runID), 0, 1)
			return err == nil && len(events) == 1
		})
	}
	return store, counted, replies
}

// endRunsTogether records each marker's run as succeeded, printing its
// marker, all in one commit: the dispatcher reads their ends in one read.
func endRunsTogether(t *testing.T, store *sqlite.Store, markers []string) {
	t.Helper()
	var parts []eventstore.StreamAppend
	for _, m := range markers {
		result, err := run.ParseCogOutput([]byte(m+"\n"), true)
		if err != nil {
			t.Fatal(err)
		}
		ended := domain.MustEncode(run.RunSucceeded{Result: result}, domain.Metadata{Actor: "executor"})
		parts = append(parts, eventstore.StreamAppend{Stream: run.Stream(dispatch.RunID(apiRequestID("admin", m), 0, 0)), Expected: eventstore.Exact(0), Events: []domain.NewEvent{ended}})
	}
	if _, err := store.AppendMulti(context.Background(), parts...); err != nil {
		t.Fatal(err)
	}
}

// expectAnsweredOnce waits for each marker's reply, which must hold it,
// and checks that its request was completed once.
func expectAnsweredOnce(t *testing.T, store *sqlite.Store, replies map[string]<-chan dispatch.Reply) {
	t.Helper()
	for m, reply := range replies {
		select {
		case got := <-reply:
			if got.Failed || strings.TrimSpace(got.Text) != m {
				t.Errorf("%s answered %q (failed %v)", m, got.Text, got.Failed)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply to %s within 10s", m)
		}
		events, err := store.ReadStream(context.Background(), dispatch.Stream(apiRequestID("admin", m)), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n := countOf(events, "RequestCompleted"); n != 1 {
			t.Errorf("%s completed %d times", m, n)
		}
	}
}

// The ends of runs that the dispatcher reads together are decided as they
// come and recorded in one commit: recorded one at a time, each waited for
// the commit of the one before.
func TestRunEndsReadTogetherAreRecordedInOneCommit(t *testing.T) {
	// Given three requests whose container runs are in flight
	markers := []string{"first", "second", "third"}
	store, counted, replies := runsEndingTogether(t, markers, false)

	// When their runs end in one commit
	endRunsTogether(t, store, markers)

	// Then each is answered with its own output, and completed once
	expectAnsweredOnce(t, store, replies)
	// And the three completions went in one append
	if got := counted.appends(); !slices.Equal(got, []int{3}) {
		t.Errorf("RequestCompleted per append: %v, want [3]", got)
	}
}

// A batch of decisions the store refuses is not lost: each is decided
// again alone, and each request answered once.
func TestRunEndsTheStoreRefusesTogetherAreDecidedOneByOne(t *testing.T) {
	// Given three requests whose container runs are in flight, and a store
	// that refuses the next append of several completions
	markers := []string{"one", "two", "three"}
	store, counted, replies := runsEndingTogether(t, markers, true)

	// When their runs end in one commit
	endRunsTogether(t, store, markers)

	// Then each is answered with its own output, and completed once
	expectAnsweredOnce(t, store, replies)
	// And the refused batch was followed by one append per request
	if got := counted.appends(); !slices.Equal(got, []int{3, 1, 1, 1}) {
		t.Errorf("RequestCompleted per append: %v, want [3 1 1 1] (the refused batch, then each alone)", got)
	}
}

package export_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/internal/testenv"
)

func TestRecordsCarryExactBytesAndChain(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	appendEvents(t, store, 12)
	events, err := store.ReadAll(context.Background(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var records []export.Record
	for _, e := range events {
		r := export.NewRecord(e)
		if strings.Contains(string(e.Data), "\n") && r.DataExact == "" {
			t.Fatalf("position %d: data that is not compact travelled without its exact bytes", e.Position)
		}
		line := r.MarshalLine()
		if strings.Count(string(line), "\n") != 1 || !strings.Contains(string(line), "<b>") && e.Position%3 != 2 {
			t.Fatalf("line %q is not one line with the data's text as stored", line)
		}
		var back export.Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatal(err)
		}
		records = append(records, back)
	}
	checkStream(t, records, 12)

	// Repeats are fine; a gap, a changed byte or a broken link is not.
	if _, err := export.CheckContinuous(append(records, records[3], records[7]), 1); err != nil {
		t.Fatalf("repeated records: %v", err)
	}
	without := append(append([]export.Record(nil), records[:5]...), records[6:]...)
	if _, err := export.CheckContinuous(without, 1); err == nil || !strings.Contains(err.Error(), "position 6 is missing") {
		t.Fatalf("a gap: error = %v", err)
	}
	changed := append([]export.Record(nil), records...)
	changed[3].Data = json.RawMessage(strings.Replace(string(changed[3].Data), `"n":3`, `"n":5`, 1))
	if _, err := export.CheckContinuous(changed, 1); err == nil || !strings.Contains(err.Error(), "position 4: the hash does not match") {
		t.Fatalf("a changed record: error = %v", err)
	}
	relinked := append([]export.Record(nil), records...)
	relinked[8].PrevHash = relinked[6].Hash
	if _, err := export.CheckContinuous(relinked, 1); err == nil {
		t.Fatal("a record linked to the wrong predecessor passed")
	}
}

// A destination that fails keeps the cursor where it was, retries, and
// once it takes the batch the cursor moves: nothing is skipped, and the
// failure shows in the status until then.
func TestExporterRetriesAFailingDestinationAndMovesTheCursorOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			cursors := export.CursorsOf(store)
			appendEvents(t, store, 30)
			var attempts atomic.Int32
			release := make(chan struct{})
			sink := &collector{fail: func([]export.Record) error {
				attempts.Add(1)
				select {
				case <-release:
					return nil
				default:
					return errors.New("the destination is down")
				}
			}}
			cfg := export.Config{Name: "c", Kind: export.KindFile, Batch: 7}
			start(t, cfg, export.Options{Store: store, Cursors: cursors, NewSink: func(context.Context) (export.Sink, error) { return sink, nil }})
			testenv.Eventually(t, "three failed attempts", func() bool { return attempts.Load() >= 3 })
			st := status(t, store, cursors, cfg)
			if st.Position != 0 || st.LagEvents != 30 || !strings.Contains(st.LastError, "the destination is down") || st.LastErrorAt == nil {
				t.Fatalf("status while down = %+v", st)
			}
			close(release)
			testenv.Eventually(t, "the cursor at the head", func() bool { return status(t, store, cursors, cfg).Position == 30 })
			checkStream(t, sink.got(), 30)
			if st := status(t, store, cursors, cfg); st.LastError != "" || st.LagEvents != 0 || st.LagSeconds != 0 || st.AckedAt == nil {
				t.Fatalf("status caught up = %+v", st)
			}
			appendEvents(t, store, 5)
			testenv.Eventually(t, "the events appended later", func() bool { return hasThrough(sink.got(), 35) })
			checkStream(t, sink.got(), 35)
		})
	}
}

func status(t *testing.T, store *sqlstore.Store, cursors export.Cursors, cfg export.Config) export.Status {
	t.Helper()
	all, err := export.StatusOf(context.Background(), store, cursors, []export.Config{cfg}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Destination == cfg.Name {
			return s
		}
	}
	t.Fatalf("no status for %s in %+v", cfg.Name, all)
	return export.Status{}
}

// An exporter stopped after the destination took a batch and before the
// cursor was written (the process killed there) sends that batch again
// when it starts: at least once, never a gap.
func TestExporterStoppedBetweenSendAndCursorSendsTheBatchAgain(t *testing.T) {
	t.Parallel()
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			cursors := export.CursorsOf(store)
			appendEvents(t, store, 20)
			cfg := export.Config{Name: "k", Kind: export.KindFile, Batch: 5}

			// The first run's context ends inside the third send, after the
			// destination took it: the cursor write that follows cannot happen.
			first := &collector{}
			ctx, cancel := context.WithCancel(context.Background())
			sends := 0
			first.fail = func([]export.Record) error {
				if sends++; sends == 3 {
					cancel()
				}
				return nil
			}
			x, err := export.New(cfg, export.Options{Store: store, Cursors: cursors, NewBackOff: fastRetries, NewSink: func(context.Context) (export.Sink, error) { return first, nil }})
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Run(ctx); err != nil {
				t.Fatalf("Run after the stop: %v", err)
			}
			if got := first.got(); len(got) != 15 || got[14].Position != 15 {
				t.Fatalf("first run delivered %d records, want positions 1 to 15", len(got))
			}
			cur, _, err := cursors.Load(context.Background(), "k")
			if err != nil || cur.Position != 10 {
				t.Fatalf("cursor after the stop = %d, %v; want 10, the last batch acknowledged", cur.Position, err)
			}

			second := &collector{}
			start(t, cfg, export.Options{Store: store, Cursors: cursors, NewSink: func(context.Context) (export.Sink, error) { return second, nil }})
			testenv.Eventually(t, "the second run at the head", func() bool { return len(second.got()) >= 10 })
			if got := second.got(); got[0].Position != 11 {
				t.Fatalf("the second run started at %d, want 11: the batch sent without its cursor again", got[0].Position)
			}
			all := append(first.got(), second.got()...)
			checkStream(t, all, 20)
		})
	}
}

// A destination added with FROM=head starts at the head of the log.
func TestExporterFromHeadSendsOnlyWhatComesAfter(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	appendEvents(t, store, 9)
	sink := &collector{}
	start(t, export.Config{Name: "h", Kind: export.KindFile, From: export.FromHead}, export.Options{Store: store, Cursors: cursors, NewSink: func(context.Context) (export.Sink, error) { return sink, nil }})
	testenv.Eventually(t, "the cursor stored at the head", func() bool {
		cur, ok, _ := cursors.Load(context.Background(), "h")
		return ok && cur.Position == 9
	})
	e := domain.NewEvent{ID: uuid.Must(uuid.NewV7()), Type: "Later", Data: json.RawMessage(`{}`)}
	if _, err := store.Append(context.Background(), "test-later", -2, e); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the event appended after the start", func() bool { return len(sink.got()) == 1 })
	if got := sink.got(); got[0].Position != 10 || got[0].Type != "Later" {
		t.Fatalf("got %+v, want only position 10", got)
	}
	if _, err := export.CheckContinuous(sink.got(), 10); err != nil {
		t.Fatal(err)
	}
}

// Two destinations, one of them down: the other and appends go on.
func TestADestinationThatIsDownHoldsUpNeitherAppendsNorOthers(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	cursors := export.CursorsOf(store)
	down := &collector{fail: func([]export.Record) error { return fmt.Errorf("connection refused") }}
	up := &collector{}
	start(t, export.Config{Name: "down", Kind: export.KindFile}, export.Options{Store: store, Cursors: cursors, NewSink: func(context.Context) (export.Sink, error) { return down, nil }})
	start(t, export.Config{Name: "up", Kind: export.KindFile}, export.Options{Store: store, Cursors: cursors, NewSink: func(context.Context) (export.Sink, error) { return up, nil }})
	appendEvents(t, store, 40)
	testenv.Eventually(t, "the working destination at the head", func() bool { return hasThrough(up.got(), 40) })
	checkStream(t, up.got(), 40)
	if got := down.got(); len(got) != 0 {
		t.Fatalf("the failing destination holds %d records", len(got))
	}
}

// A cursor moves only from where its exporter left it: a second exporter
// of the same destination (another server on the database) finds it
// moved instead of writing over it.
func TestACursorMovesOnlyFromWhereItsExporterLeftIt(t *testing.T) {
	t.Parallel()
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cursors := export.CursorsOf(open(t))
			ctx := context.Background()
			if err := cursors.Init(ctx, export.Cursor{Destination: "d"}); err != nil {
				t.Fatal(err)
			}
			if err := cursors.Ack(ctx, "d", 0, 5, "aa", time.Now(), time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := cursors.Ack(ctx, "d", 0, 7, "bb", time.Now(), time.Now()); !errors.Is(err, export.ErrCursorMoved) {
				t.Fatalf("an Ack from a stale position: %v, want ErrCursorMoved", err)
			}
			if cur, _, _ := cursors.Load(ctx, "d"); cur.Position != 5 || cur.Hash != "aa" {
				t.Fatalf("cursor %+v, want 5 kept", cur)
			}
			if err := cursors.Init(ctx, export.Cursor{Destination: "d", Position: 9}); err != nil {
				t.Fatal(err)
			}
			if cur, _, _ := cursors.Load(ctx, "d"); cur.Position != 5 {
				t.Fatalf("Init over a stored cursor moved it to %d", cur.Position)
			}
		})
	}
}

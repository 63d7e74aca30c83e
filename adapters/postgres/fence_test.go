package postgres_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/postgres"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
)

const fenceChildEnv = "LOGBOOK_TEST_FENCE_CHILD_URL"

// A leader paused by SIGSTOP past its lease, then resumed, appends nothing
// after the new leader's first append: its next append is fenced, however
// long it goes on believing it leads (this one ignores its failed renewals,
// as a leader that has not noticed yet would).
func TestAPausedLeaderIsFencedOnceResumed(t *testing.T) {
	store := openTemp(t)
	child := exec.Command(os.Args[0], "-test.run=^TestFenceChildProcess$", "-test.count=1")
	child.Env = append(os.Environ(), fenceChildEnv+"="+store.URL())
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the child exited waiting for %s", what)
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s from the child within 30s", what)
		}
		return ""
	}
	for appended := 0; appended < 5; {
		if strings.HasPrefix(next("an append"), "appended ") {
			appended++
		}
	}
	if err := child.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// The new leader keeps asking until the paused one's lease has expired.
	ctx := context.Background()
	var lease eventstore.Lease
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, ok, err := store.AcquireLease(ctx, "dispatcher", "new-leader", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			lease = l
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the paused leader's lease never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lease.Term != 2 {
		t.Fatalf("the new leader's term is %d, want 2", lease.Term)
	}
	first, err := store.Append(eventstore.WithFence(ctx, lease), "leader-1", eventstore.Any, domain.MustEncode(storetest.Event{Note: "new leader"}, domain.Metadata{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for {
		l := next("the fence")
		if strings.HasPrefix(l, "fenced ") {
			if !strings.Contains(l, "term 2") || !strings.Contains(l, "new-leader") {
				t.Errorf("the fence does not name the new term and holder: %s", l)
			}
			break
		}
		if strings.HasPrefix(l, "error ") {
			t.Fatalf("the child failed otherwise: %s", l)
		}
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("the child: %v", err)
	}

	events, err := store.ReadStream(ctx, "leader-1", 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var before int
	for _, e := range events {
		var ev storetest.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Note == "old leader" {
			before++
			if e.Position > first.FirstPosition {
				t.Errorf("the paused leader appended at %d, after the new leader's first append at %d", e.Position, first.FirstPosition)
			}
		}
	}
	if before < 5 {
		t.Errorf("the old leader's appends: %d, want at least 5", before)
	}
	report, err := eventstore.Verify(ctx, store, nil)
	if err != nil || !report.OK {
		t.Fatalf("verify: %+v, %v", report, err)
	}
}

// TestFenceChildProcess is the leader of the test above, run in a process
// of its own; it does nothing in a normal run.
func TestFenceChildProcess(t *testing.T) {
	url := os.Getenv(fenceChildEnv)
	if url == "" {
		t.Skip("run by TestAPausedLeaderIsFencedOnceResumed")
	}
	ctx := context.Background()
	store, err := postgres.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	defer store.Close()
	lease, ok, err := store.AcquireLease(ctx, "dispatcher", "old-leader", 500*time.Millisecond)
	if err != nil || !ok {
		fmt.Println("error acquiring:", ok, err)
		return
	}
	renewed := time.Now()
	for {
		if time.Since(renewed) > 100*time.Millisecond {
			if l, err := store.RenewLease(ctx, lease, 500*time.Millisecond); err == nil {
				lease = l
			}
			renewed = time.Now()
		}
		res, err := store.Append(eventstore.WithFence(ctx, lease), "leader-1", eventstore.Any, domain.MustEncode(storetest.Event{Note: "old leader"}, domain.Metadata{}))
		switch {
		case errors.Is(err, eventstore.ErrFenced):
			fmt.Println("fenced", err)
			return
		case err != nil:
			fmt.Println("error", err)
			return
		}
		fmt.Println("appended", res.FirstPosition)
		time.Sleep(10 * time.Millisecond)
	}
}

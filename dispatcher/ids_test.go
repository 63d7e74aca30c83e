package dispatcher_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
)

// Every event a request causes, from its RequestReceived to its reply,
// has an id that starts as the RequestReceived's does, so that the log's
// index of ids takes a request's events on one page (dispatch.DerivedID).
func TestARequestsEventsShareThePrefixOfTheirIds(t *testing.T) {
	h := startAdmin(t)
	ctx := context.Background()
	h.must(t, "admin", "echo prefix-test")
	events, err := h.store.ReadAll(ctx, 1, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var first domain.RecordedEvent
	for _, e := range events {
		if e.Type == "RequestReceived" && bytes.Contains(e.Data, []byte("echo prefix-test")) {
			first = e
		}
	}
	if first.Type == "" {
		t.Fatalf("no RequestReceived for the request among %d events", len(events))
	}
	requestID := strings.TrimPrefix(first.Stream, dispatch.StreamPrefix)
	var types []string
	for _, e := range events {
		if e.Metadata().CorrelationID != requestID {
			continue
		}
		types = append(types, e.Type)
		if !bytes.Equal(e.ID[:6], first.ID[:6]) {
			t.Errorf("%s %s (stream %s) does not start as the RequestReceived %s", e.Type, e.ID, e.Stream, first.ID)
		}
	}
	got := strings.Join(types, " ")
	for _, want := range []string{"RequestReceived", "PermissionChecked", "RunRequested", "RunSucceeded", "ReplyPosted"} {
		if !strings.Contains(got, want) {
			t.Errorf("the request's events %s hold no %s", got, want)
		}
	}
}

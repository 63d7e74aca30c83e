package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestProjectionsStatusAndRebuildReportEveryView(t *testing.T) {
	seedSQLite(t, 7)
	out, _, err := runCLIOutput(t, "projections", "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VIEW", "permissions  0", "history", "transcripts"} {
		if !strings.Contains(out, want) {
			t.Errorf("status before any build = %q, missing %q", out, want)
		}
	}
	out, _, err = runCLIOutput(t, "projections", "rebuild")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "rebuilt every view: 7 events in") || !strings.Contains(out, "events/s") {
		t.Fatalf("rebuild printed %q", out)
	}
	out, _, err = runCLIOutput(t, "projections", "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var statuses []struct {
		Name       string `json:"name"`
		Checkpoint int64  `json:"checkpoint"`
		Head       int64  `json:"head"`
		Behind     int64  `json:"behind"`
	}
	if err := json.Unmarshal([]byte(out), &statuses); err != nil || len(statuses) != 6 {
		t.Fatalf("status --json = %s (%v)", out, err)
	}
	for _, s := range statuses {
		if s.Checkpoint != 7 || s.Head != 7 || s.Behind != 0 {
			t.Errorf("after a rebuild %+v", s)
		}
	}
	out, _, err = runCLIOutput(t, "projections", "rebuild", "history")
	if err != nil || !strings.HasPrefix(out, "rebuilt history: 7 events") {
		t.Fatalf("rebuild history printed %q, %v", out, err)
	}
	_, _, err = runCLIOutput(t, "projections", "rebuild", "nosuch")
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, "permissions, history, transcripts, approvals, audit") {
		t.Fatalf("rebuild of an unknown view returned %v, want exit 2 naming the views", err)
	}
}

package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
	"github.com/logbookhq/logbook/projections/projectionstest"
)

// Given a history of random requests and some whose pipeline names a
// command twice,
// when requests are paged 7 at a time through each kind of filter the API
// sends, then the pages together are exactly the requests the filter keeps,
// newest first, each once.
func TestHistoryRequestPagesByKeysetThroughFilters(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		w := projectionstest.NewWorkload(3, 5)
		if err := projectionstest.AppendAll(ctx, src, w.Setup()); err != nil {
			t.Fatal(err)
		}
		twice := "ops:twice"
		stages, _ := json.Marshal([]map[string]string{{"command": twice}, {"command": "ops:grep"}, {"command": twice}})
		for i := range 150 {
			if err := projectionstest.AppendAll(ctx, src, w.Request()); err != nil {
				t.Fatal(err)
			}
			if i%10 == 0 { // 15 of them, across pages of 7
				id := fmt.Sprintf("twice-%d", i)
				appendTo(t, src, dispatch.Stream(id), dispatch.RequestReceived{Adapter: "slack", MessageID: id, Room: "#ops", ChatUser: "U1", Text: "x"},
					dispatch.PipelineParsed{Stages: stages})
			}
		}
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		all, err := h.Requests(ctx, projections.RequestFilter{Limit: 1000})
		if err != nil || len(all.Requests) != 165 || all.Next != "" {
			t.Fatalf("all requests: %d rows, next %q, %v", len(all.Requests), all.Next, err)
		}
		// The filters' values, taken from the history so each keeps some.
		var command, user string
		for _, r := range all.Requests {
			if fields := strings.Fields(r.Commands); command == "" && len(fields) > 0 && fields[0] != twice {
				command = fields[0]
			}
			if user == "" && r.Username != "" {
				user = r.Username
			}
		}
		hasCommand := func(r projections.RequestRow, c string) bool { return slices.Contains(strings.Fields(r.Commands), c) }
		userID := projectionstest.UserID(user)
		now := time.Now()
		for _, tc := range []struct {
			name   string
			filter projections.RequestFilter
			keep   func(projections.RequestRow) bool
		}{
			{"no filter pages through every request", projections.RequestFilter{}, func(projections.RequestRow) bool { return true }},
			{"a command filter keeps requests with that command in any stage", projections.RequestFilter{Command: command},
				func(r projections.RequestRow) bool { return hasCommand(r, command) }},
			{"a command a pipeline names twice lists that request once", projections.RequestFilter{Command: twice},
				func(r projections.RequestRow) bool { return hasCommand(r, twice) }},
			{"a command and user filter keeps both", projections.RequestFilter{Command: command, Username: user},
				func(r projections.RequestRow) bool { return hasCommand(r, command) && r.Username == user }},
			{"a command filter in a time range keeps the command", projections.RequestFilter{Command: twice, From: now.Add(-time.Hour), To: now.Add(time.Hour)},
				func(r projections.RequestRow) bool { return hasCommand(r, twice) }},
			{"a command filter in the future keeps nothing", projections.RequestFilter{Command: command, From: now.Add(time.Hour)},
				func(projections.RequestRow) bool { return false }},
			{"a username and status filter keeps both", projections.RequestFilter{Username: user, Status: projections.RequestCompleted},
				func(r projections.RequestRow) bool {
					return r.Username == user && r.Status == projections.RequestCompleted
				}},
			{"a user id and rare status filter keeps both", projections.RequestFilter{UserID: userID, Status: projections.RequestDenied},
				func(r projections.RequestRow) bool {
					return r.UserID == userID && r.Status == projections.RequestDenied
				}},
			{"a user with a status none of theirs has keeps nothing", projections.RequestFilter{Username: user, Status: projections.RequestUnknownUser},
				func(projections.RequestRow) bool { return false }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []string
				for _, r := range all.Requests {
					if tc.keep(r) {
						want = append(want, r.RequestID)
					}
				}
				var got []string
				f := tc.filter
				f.Limit = 7
				for pages := 0; ; pages++ {
					page, err := h.Requests(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range page.Requests {
						got = append(got, r.RequestID)
					}
					if page.Next == "" || pages > 100 {
						break
					}
					f.Cursor = page.Next
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("paged %d requests, want %d:\n%v\n%v", len(got), len(want), got, want)
				}
			})
		}
	})
}

// Given a request whose pipeline names one command in two stages, when it is
// parsed again with that command in one stage, then the command filter
// lists it once and the dropped command no longer finds it.
func TestHistoryCommandFilterFollowsTheLastParse(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		stages := func(commands ...string) json.RawMessage {
			var s []map[string]string
			for _, c := range commands {
				s = append(s, map[string]string{"command": c})
			}
			raw, _ := json.Marshal(s)
			return raw
		}
		appendTo(t, src, dispatch.Stream("q1"), dispatch.RequestReceived{Adapter: "slack", MessageID: "m1", Room: "#ops", ChatUser: "U1", Text: "x"},
			dispatch.PipelineParsed{Stages: stages("ops:echo", "ops:echo", "ops:grep")})
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		ids := func(command string) []string {
			t.Helper()
			page, err := h.Requests(ctx, projections.RequestFilter{Command: command})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range page.Requests {
				out = append(out, r.RequestID)
			}
			return out
		}
		if got := ids("ops:echo"); !slices.Equal(got, []string{"q1"}) {
			t.Fatalf("ops:echo in stages 0 and 1 lists %v, want [q1]", got)
		}
		appendTo(t, src, dispatch.Stream("q1"), dispatch.PipelineParsed{Stages: stages("ops:grep", "ops:echo")})
		catchUp(t, src, projections.NewHistory())
		if got := ids("ops:echo"); !slices.Equal(got, []string{"q1"}) {
			t.Fatalf("after the second parse ops:echo lists %v, want [q1]", got)
		}
		if got := ids("ops:grep"); !slices.Equal(got, []string{"q1"}) {
			t.Fatalf("after the second parse ops:grep lists %v, want [q1]", got)
		}
		if got := ids("ops:tail"); len(got) != 0 {
			t.Fatalf("a command no stage names lists %v", got)
		}
	})
}

// Given requests parsed before their sender is resolved, or parsed twice in
// one batch, when they are filtered by command and user, then each is
// found under its user and its last parse's commands only.
func TestHistoryCommandAndUserFilterFollowsIdentityAndTheLastParse(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		stages := func(commands ...string) json.RawMessage {
			var s []map[string]string
			for _, c := range commands {
				s = append(s, map[string]string{"command": c})
			}
			raw, _ := json.Marshal(s)
			return raw
		}
		received := func(id string) dispatch.RequestReceived {
			return dispatch.RequestReceived{Adapter: "slack", MessageID: id, Room: "#ops", ChatUser: "U1", Text: "x"}
		}
		// Parsed, then resolved in a later batch (the runner takes 3 events at a time).
		appendTo(t, src, dispatch.Stream("late"), received("late"), dispatch.PipelineParsed{Stages: stages("ops:echo", "ops:grep")})
		appendTo(t, src, dispatch.Stream("other"), received("other"))
		appendTo(t, src, dispatch.Stream("late"), dispatch.IdentityResolved{User: "u-alice", Username: "alice"})
		// Parsed twice in one batch, the second time shorter.
		appendTo(t, src, dispatch.Stream("twice"), received("twice"), dispatch.IdentityResolved{User: "u-bob", Username: "bob"})
		appendTo(t, src, dispatch.Stream("twice"), dispatch.PipelineParsed{Stages: stages("ops:echo", "ops:grep", "ops:tail")},
			dispatch.PipelineParsed{Stages: stages("ops:echo")})
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		for _, tc := range []struct {
			name string
			f    projections.RequestFilter
			want []string
		}{
			{"resolved after its parse, by username", projections.RequestFilter{Command: "ops:grep", Username: "alice"}, []string{"late"}},
			{"resolved after its parse, by user id", projections.RequestFilter{Command: "ops:echo", UserID: "u-alice"}, []string{"late"}},
			{"another user's command", projections.RequestFilter{Command: "ops:grep", Username: "bob"}, nil},
			{"the last parse's command", projections.RequestFilter{Command: "ops:echo", Username: "bob"}, []string{"twice"}},
			{"a command only the first parse named", projections.RequestFilter{Command: "ops:tail"}, nil},
			{"a stage only the first parse had", projections.RequestFilter{Command: "ops:grep"}, []string{"late"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				page, err := h.Requests(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range page.Requests {
					got = append(got, r.RequestID)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
	})
}

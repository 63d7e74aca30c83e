package dispatch

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/run"
)

// FuzzDecideReceived decides arbitrary request text (alias expansion, "!!",
// parsing, resolution, checks) and one arbitrary output of the first run:
// nothing may panic, and deciding twice must agree.
func FuzzDecideReceived(f *testing.F) {
	for _, seed := range []struct{ text, output string }{
		{"ops:status", `[{"body":["x"]}]`},
		{"ops:list | ops:deploy $name", `[{"name":"prod"},{"name":"web"}]`},
		{"st | echo ${body}", `{"body":"x"}`},
		{"!!", ``},
		{"!", `null`},
		{" !prodstat > #ops", `[[1],{"a":2}]`},
	} {
		f.Add(seed.text, seed.output)
	}
	facts := newTestFacts(f)
	f.Fuzz(func(t *testing.T, text, output string) {
		trigger := RequestReceived{Adapter: testAdapter, MessageID: "m", Room: "general", ChatUser: "U1", Text: text}
		d, err := Decide(Request{}, trigger, facts)
		again, againErr := Decide(Request{}, trigger, facts)
		if !reflect.DeepEqual(d, again) || (err == nil) != (againErr == nil) {
			t.Fatalf("not deterministic for %q", text)
		}
		if err != nil {
			t.Fatalf("a received request is always decided: %v", err)
		}
		r := Evolve(Request{}, trigger)
		for _, e := range d.Request {
			r = Evolve(r, e)
		}
		if (d.Reply != nil) != r.Status().Ended() {
			t.Fatalf("reply %v but status %s", d.Reply != nil, r.Status())
		}
		for _, s := range d.Runs {
			if err := run.ValidateID(s.RunID); err != nil {
				t.Fatal(err)
			}
			ev := RunEvent{RunID: s.RunID, Event: run.RunSucceeded{Result: run.Result{Value: []byte(output)}}}
			if _, err := Decide(r, ev, facts); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzCogStdout writes arbitrary body lines, or an arbitrary JSON value, as
// a builtin's stdout: run.ParseCogOutput must read back the same value.
func FuzzCogStdout(f *testing.F) {
	for _, seed := range []string{"hello", "a\nb", "JSON", "COGCMD_INFO: x", "line\r", "\xff", "", `{"a":[1,2]}`, `"s"`, "COG_TEMPLATE: t"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		res := BodyResult(strings.Split(text, "\x00")...)
		assertParsesBack(t, res, CogStdout(res))
		if json.Valid([]byte(text)) {
			res := run.Result{Value: json.RawMessage(text)}
			assertParsesBack(t, res, CogStdout(res))
		}
	})
}

// FuzzUsernameFor derives usernames from arbitrary handles: each is a
// valid username, and never one that is taken.
func FuzzUsernameFor(f *testing.F) {
	for _, seed := range []string{"U024BE7LH", "Bob[away]", "", "!!!", "ü", "a-2", strings.Repeat("y", 100)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, handle string) {
		taken := map[string]bool{"user": true, "a-2": true}
		name := UsernameFor(handle, func(n string) bool { return taken[n] })
		if err := access.ValidateUsername(name); err != nil {
			t.Fatalf("UsernameFor(%q) = %q: %v", handle, name, err)
		}
		if taken[name] {
			t.Fatalf("UsernameFor(%q) = %q, which is taken", handle, name)
		}
	})
}

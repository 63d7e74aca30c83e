package dispatch

import (
	"errors"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/run"
)

func TestARequestThatCannotRunEndsWithEventsAndAClearReply(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		handle    string
		text      string
		facts     func(*StaticFacts)
		wantTypes string
		wantReply []string
		check     func(*testing.T, Decision)
	}{
		{
			name: "an unknown chat user is told how to get access", handle: "U9", text: "ops:status",
			wantTypes: "IdentityUnknown",
			wantReply: []string{"no Logbook user is linked to your slack handle U9", "!user link USERNAME slack U9"},
		},
		{
			name: "a disabled user is denied before parsing", handle: "U3", text: "ops:status",
			wantTypes: "IdentityResolved RequestDenied",
			wantReply: []string{"Denied:", "carol is disabled"},
		},
		{
			name: "a request over 16 KiB is rejected unparsed", handle: "U1", text: "echo " + strings.Repeat("x", 16<<10),
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"bytes long; the limit is 16384 bytes"},
		},
		{
			name: "a pipeline that does not parse is rejected with its column", handle: "U1", text: "ops:status | ",
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"column 14: expected a command after |"},
			check: func(t *testing.T, d Decision) {
				if rej := find[PipelineRejected](t, d.Request); rej.Column != 14 {
					t.Fatalf("column %d, want 14", rej.Column)
				}
			},
		},
		{
			name: "an unknown command is rejected with the closest name", handle: "U1", text: "ops:deplyo prod",
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"there is no command ops:deplyo; did you mean ops:deploy?"},
			check: func(t *testing.T, d Decision) {
				rej := find[PipelineRejected](t, d.Request)
				if rej.Suggestion != "ops:deploy" || rej.Column != 1 {
					t.Fatalf("suggestion %q column %d", rej.Suggestion, rej.Column)
				}
			},
		},
		{
			name: "an unknown bare command is rejected with the closest bare name", handle: "U1", text: "ops:status | ehco hi",
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"there is no command ehco; did you mean echo?"},
			check: func(t *testing.T, d Decision) {
				if rej := find[PipelineRejected](t, d.Request); rej.Column != 14 {
					t.Fatalf("column %d, want 14 (the second stage)", rej.Column)
				}
			},
		},
		{
			name: "a command nothing resembles gets no suggestion", handle: "U1", text: "zzzzzzzzzz",
			wantTypes: "IdentityResolved PipelineRejected",
			check: func(t *testing.T, d Decision) {
				if rej := find[PipelineRejected](t, d.Request); rej.Suggestion != "" || strings.Contains(rej.Error, "did you mean") {
					t.Fatalf("unexpected suggestion in %+v", rej)
				}
			},
		},
		{
			name: "a bare name two bundles share is ambiguous and names both", handle: "U1", text: "status",
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"status is ambiguous: it could be ops:status or web:status"},
		},
		{
			name: "a command of a disabled bundle is rejected saying so", handle: "U1", text: "legacy:purge",
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"the bundle legacy is disabled"},
		},
		{
			name: "a bare command only a disabled bundle has is rejected saying so", handle: "U1", text: "purge",
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"only in disabled bundles (legacy:purge)"},
		},
		{
			name: "a user without the permission is denied naming it", handle: "U2", text: "ops:deploy staging",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked RequestDenied",
			wantReply: []string{"Denied: stage 1 (ops:deploy): missing permission ops:deploy"},
		},
		{
			name: "a rule on an argument denies the user who lacks its permission", handle: "U1", text: "deploy prod",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked RequestDenied",
			wantReply: []string{"missing permission ops:prod"},
			check: func(t *testing.T, d Decision) {
				c := find[PermissionChecked](t, d.Request)
				if c.Granted || c.Command != "ops:deploy" || c.Required != "ops:prod" || !strings.Contains(c.Rule, "arg[0] == 'prod'") || len(c.Detail) == 0 {
					t.Fatalf("check %+v", c)
				}
			},
		},
		{
			name: "every stage is checked before anything runs, even after a denial", handle: "U2", text: "ops:deploy staging | ops:locked | echo done",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked PermissionChecked PermissionChecked RequestDenied",
			wantReply: []string{"stage 1 (ops:deploy)", "stage 2 (ops:locked): no rule for ops:locked matches"},
			check: func(t *testing.T, d Decision) {
				checks := findAll[PermissionChecked](d.Request)
				if !checks[2].Granted || checks[0].Granted || checks[1].Granted || checks[2].Stage != 2 {
					t.Fatalf("checks %+v", checks)
				}
				if len(d.Runs) != 0 {
					t.Fatalf("runs started: %+v", d.Runs)
				}
			},
		},
		{
			name: "a redirect to a room the bot cannot post in is denied before anything runs", handle: "U1", text: "ops:status *> #ops #secret",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked RequestDenied",
			wantReply: []string{"I cannot post to #secret"},
		},
		{
			name: "!! with no previous request says so", handle: "U2", text: "!!",
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"there is no previous request of yours to run again"},
		},
		{
			name: "!! whose previous request was !! refuses to loop", handle: "U1", text: "!!",
			facts:     func(f *StaticFacts) { f.Previous["u-alice"] = "!!" },
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"was !! too"},
		},
		{
			name: "an alias whose text does not parse says which alias", handle: "U1", text: "broken",
			facts:     func(f *StaticFacts) { f.SiteAliases["broken"] = "ops:status |" },
			wantTypes: "IdentityResolved PipelineRejected",
			wantReply: []string{"the expansion of the alias broken"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := given(t)
			if tc.facts != nil {
				s.withFacts(tc.facts)
			}
			d := s.then(received(tc.handle, tc.text))
			wantTypes(t, d, tc.wantTypes)
			reply := wantReply(t, d, tc.wantReply...)
			if !reply.Failed || len(reply.To) != 1 || reply.To[0] != (Destination{Kind: pipeline.DestinationRoom, Name: "general"}) {
				t.Fatalf("a refusal goes back to the room it came from, marked failed: %+v", reply)
			}
			if len(d.Runs) != 0 || len(d.Cancel) != 0 {
				t.Fatalf("nothing may run: %+v", d)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func TestARequestThatMayRunStartsItsFirstStage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		handle    string
		text      string
		wantTypes string
		check     func(*testing.T, Decision)
	}{
		{
			name: "a permitted command starts one run with its arguments, options and limits", handle: "U1", text: "ops:deploy staging -r eu-west-1",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked StageStarted",
			check: func(t *testing.T, d Decision) {
				req := d.Runs[0].Request
				if req.Bundle != "ops" || req.Command != "deploy" || req.Version != "1.2.0" || req.Image != "acme/ops:1.2.0" ||
					req.Argv[0] != "/bin/deploy" || req.Args[0] != "staging" || req.Options["region"] != "eu-west-1" {
					t.Fatalf("run request %+v", req)
				}
				if req.Limits.TimeoutMS != 30000 || req.Limits.MemoryBytes != 1<<28 || req.Mode != run.ModeFresh {
					t.Fatalf("limits: the command's timeout over the defaults: %+v %s", req.Limits, req.Mode)
				}
				if req.User == nil || *req.User != run.DefaultUser {
					t.Fatalf("user %v, want the default %v recorded", req.User, run.DefaultUser)
				}
				if len(req.EnvNames) != 1 || req.EnvNames[0] != "OPS_TOKEN" {
					t.Fatalf("env names %v", req.EnvNames)
				}
				inv := req.Invocation
				if inv.Room != "general" || inv.ChatHandle != "U1" || inv.Username != "alice" || !inv.First || !inv.Last || inv.PipelineID != req.RequestID {
					t.Fatalf("invocation %+v", inv)
				}
				if req.Input != nil {
					t.Fatalf("the first stage gets no input, got %s", req.Input)
				}
			},
		},
		{
			name: "a user with the argument's permission may deploy to prod", handle: "U4", text: "deploy prod",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked StageStarted",
		},
		{
			name: "a bare builtin resolves before any bundle and runs in-process", handle: "U2", text: "echo hello world",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked StageStarted",
			check: func(t *testing.T, d Decision) {
				start := d.Runs[0]
				if !start.Builtin || start.Request.Mode != ModeBuiltin || start.Request.Bundle != BuiltinBundle || start.Request.Command != "echo" || start.Request.User != nil {
					t.Fatalf("builtin start %+v", start)
				}
			},
		},
		{
			name: "a user alias wins over a site alias and is recorded", handle: "U1", text: "st > #ops",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked StageStarted",
			check: func(t *testing.T, d Decision) {
				p := find[PipelineParsed](t, d.Request)
				if p.Alias != "st" || p.Expanded != "ops:status > #ops" || d.Runs[0].Request.Bundle != "ops" {
					t.Fatalf("parsed %+v, run %+v", p, d.Runs[0].Request)
				}
			},
		},
		{
			name: "a site alias applies to a user without their own", handle: "U2", text: "st",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked StageStarted",
			check: func(t *testing.T, d Decision) {
				if p := find[PipelineParsed](t, d.Request); p.Alias != "st" || d.Runs[0].Request.Bundle != "web" {
					t.Fatalf("parsed %+v, run %+v", p, d.Runs[0].Request)
				}
			},
		},
		{
			name: "!! runs the previous request again and records it", handle: "U1", text: "!!",
			wantTypes: "IdentityResolved PipelineParsed PermissionChecked StageStarted",
			check: func(t *testing.T, d Decision) {
				if p := find[PipelineParsed](t, d.Request); !p.Rerun || p.Expanded != "ops:list" || d.Runs[0].Request.Command != "list" {
					t.Fatalf("parsed %+v", p)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			trigger := received(tc.handle, tc.text)
			d := given(t).then(trigger)
			wantTypes(t, d, tc.wantTypes)
			if d.Reply != nil || len(d.Runs) != 1 {
				t.Fatalf("want one run and no reply yet: %+v", d)
			}
			id := RequestID(trigger.Adapter, trigger.MessageID)
			started := find[StageStarted](t, d.Request)
			if started.RunID != RunID(id, 0, 0) || d.Runs[0].RunID != started.RunID || run.ValidateID(started.RunID) != nil {
				t.Fatalf("run id %q", started.RunID)
			}
			if d.Runs[0].Request.RequestID != id || d.Runs[0].Request.Stage != 0 {
				t.Fatalf("run request %+v", d.Runs[0].Request)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func TestDecidingWithoutAReceivedRequestIsAnError(t *testing.T) {
	t.Parallel()
	_, err := Decide(Request{}, RequestTimedOut{}, newTestFacts(t))
	var de *Error
	if !errors.As(err, &de) || de.Kind != KindNotReceived {
		t.Fatalf("err %v", err)
	}
}

func TestTheRequestsOwnLaterEventsDecideNothing(t *testing.T) {
	t.Parallel()
	trigger := received("U1", "ops:status")
	s := given(t)
	d := s.then(trigger)
	s.record(trigger, d)
	for _, e := range d.Request {
		if got := s.then(e); !got.IsZero() {
			t.Fatalf("%s decided %+v", e.EventType(), got)
		}
	}
}

// A run records the user its bundle asks for, and its pids limit is held to
// the site's maximum even when the bundle was installed under a higher one.
func TestARunRecordsItsUserAndIsHeldToTheSitesPidsMaximum(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		execution string
		maxPids   int64
		wantUser  run.User
		wantPids  int64
	}{
		{"the bundle's uid and gid, and its pids under the default maximum", "  user: \"1000:100\"\n  pids: 512\n", 0, run.User{UID: 1000, GID: 100}, 512},
		{"pids over the default maximum", "  pids: 5000\n", 0, run.DefaultUser, run.DefaultMaxPids},
		{"pids over a configured maximum", "  pids: 512\n", 64, run.DefaultUser, 64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := loadBundle(t, webBundle+"execution:\n"+tc.execution)
			s := given(t).withFacts(func(f *StaticFacts) {
				f.Installed = []InstalledBundle{{Bundle: b, Enabled: true}}
				f.Config.MaxPids = tc.maxPids
			})
			d := s.then(received("U2", "web:status"))
			req := d.Runs[0].Request
			if req.User == nil || *req.User != tc.wantUser || req.Limits.Pids != tc.wantPids {
				t.Fatalf("user %v, pids %d; want %v and %d", req.User, req.Limits.Pids, tc.wantUser, tc.wantPids)
			}
		})
	}
}

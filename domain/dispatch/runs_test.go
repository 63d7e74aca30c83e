package dispatch

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/run"
)

// started is a scenario whose request was received and whose first stage
// started; it returns the scenario and the request id.
func started(t *testing.T, handle, text string) (*scenario, string) {
	t.Helper()
	trigger := received(handle, text)
	s := given(t)
	d := s.then(trigger)
	if len(d.Runs) == 0 {
		t.Fatalf("%q started nothing: %s %+v", text, typesOf(d.Request), d.Reply)
	}
	s.record(trigger, d)
	return s, RequestID(trigger.Adapter, trigger.MessageID)
}

func TestASingleStageThatSucceedsCompletesTheRequestAndReplies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		output string
		want   string
	}{
		{"Cog's body lines become the reply's lines", `[{"body":["line one","line two"]},{"body":["line three"]}]`, "line one\nline two\nline three"},
		{"other JSON is shown pretty-printed", `{"release":42,"ok":true}`, "{\n  \"release\": 42,\n  \"ok\": true\n}"},
		{"a JSON string is shown as its text", `"deployed"`, "deployed"},
		{"no output still says the request completed", `null`, NoOutput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, id := started(t, "U1", "ops:status")
			trigger := RunEvent{RunID: RunID(id, 0, 0), Event: run.RunSucceeded{Result: run.Result{
				Value: json.RawMessage(tc.output),
				Logs:  []run.LogLine{{Level: "info", Message: "COGCMD logs stay out of the reply"}},
			}}}
			d := s.then(trigger)
			wantTypes(t, d, "RequestCompleted")
			reply := wantReply(t, d)
			if reply.Text != tc.want || reply.Failed || strings.Contains(reply.Text, "COGCMD") {
				t.Fatalf("reply %q, want %q", reply.Text, tc.want)
			}
			if string(find[RequestCompleted](t, d.Request).Output) != tc.output {
				t.Fatalf("output %s", find[RequestCompleted](t, d.Request).Output)
			}
			if reply.To[0] != (Destination{Kind: pipeline.DestinationRoom, Name: "general"}) || reply.Adapter != testAdapter {
				t.Fatalf("destination %+v", reply)
			}
		})
	}
}

func TestTheReplyGoesToEveryRedirectDestination(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:status *> #ops me here @bob #ops")
	d := s.then(succeeded(RunID(id, 0, 0), `[{"body":["fine"]}]`))
	reply := wantReply(t, d, "fine")
	want := []Destination{
		{Kind: pipeline.DestinationRoom, Name: "ops"},
		{Kind: pipeline.DestinationUser, Name: "U1"},
		{Kind: pipeline.DestinationRoom, Name: "general"},
		{Kind: pipeline.DestinationUser, Name: "bob"},
	}
	if !reflect.DeepEqual(reply.To, want) {
		t.Fatalf("destinations %+v, want %+v", reply.To, want)
	}
}

func TestTheTemplateOfTheLastStageTravelsWithTheReply(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:status")
	d := s.then(RunEvent{RunID: RunID(id, 0, 0), Event: run.RunSucceeded{Result: run.Result{Value: json.RawMessage(`{"a":1}`), Template: "status"}}})
	if reply := wantReply(t, d); reply.Template != "status" || string(reply.Value) != `{"a":1}` {
		t.Fatalf("reply %+v", reply)
	}
}

func TestAListOutputRunsTheNextStageOncePerElement(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:list | ops:deploy $name --region=${region}")
	d := s.then(succeeded(RunID(id, 0, 0), `[{"name":"web","region":"eu"},{"name":"db","region":"us"},{"name":"cache","region":"ap"}]`))
	wantTypes(t, d, "InvocationChecked InvocationChecked InvocationChecked StageStarted StageStarted StageStarted")
	if len(d.Runs) != 3 || d.Reply != nil {
		t.Fatalf("decision %+v", d)
	}
	for i, want := range []struct {
		arg, region string
		first, last bool
	}{{"web", "eu", true, false}, {"db", "us", false, false}, {"cache", "ap", false, true}} {
		start := d.Runs[i]
		req := start.Request
		if start.RunID != RunID(id, 1, i) || req.Stage != 1 || req.Args[0] != want.arg || req.Options["region"] != want.region {
			t.Fatalf("invocation %d: %+v", i, start)
		}
		if req.Invocation.First != want.first || req.Invocation.Last != want.last {
			t.Fatalf("invocation %d step: first %v last %v", i, req.Invocation.First, req.Invocation.Last)
		}
		var input map[string]string
		if err := json.Unmarshal(req.Input, &input); err != nil || input["name"] != want.arg {
			t.Fatalf("invocation %d input %s", i, req.Input)
		}
		if ss := findAll[StageStarted](d.Request)[i]; ss.Invocation != i || ss.RunID != start.RunID || ss.Stage != 1 {
			t.Fatalf("stage started %+v", ss)
		}
	}
	s.record(succeeded(RunID(id, 0, 0), `[]`), d)

	first := s.then(succeeded(RunID(id, 1, 0), `{"deployed":"web"}`))
	if !first.IsZero() {
		t.Fatalf("the stage has runs still going; decided %+v", first)
	}
	s.record(succeeded(RunID(id, 1, 0), `{"deployed":"web"}`), first)
	s.record(succeeded(RunID(id, 1, 2), `[{"deployed":"cache"}]`), Decision{})
	last := s.then(succeeded(RunID(id, 1, 1), `{"deployed":"db"}`))
	wantTypes(t, last, "RequestCompleted")
	out := string(find[RequestCompleted](t, last.Request).Output)
	if out != `[{"deployed":"web"},{"deployed":"db"},{"deployed":"cache"}]` {
		t.Fatalf("output gathers the invocations in order: %s", out)
	}
}

func TestAnObjectOutputRunsTheNextStageOnce(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:status | echo $state")
	d := s.then(succeeded(RunID(id, 0, 0), `{"state":"green"}`))
	wantTypes(t, d, "InvocationChecked StageStarted")
	if len(d.Runs) != 1 || d.Runs[0].Request.Args[0] != "green" || !d.Runs[0].Builtin {
		t.Fatalf("runs %+v", d.Runs)
	}
	if inv := d.Runs[0].Request.Invocation; !inv.First || !inv.Last {
		t.Fatalf("a single invocation is both first and last: %+v", inv)
	}
}

func TestAStageWithoutVariablesGetsThePreviousOutputWithoutARecheck(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:status | ops:list")
	d := s.then(succeeded(RunID(id, 0, 0), `[{"body":["x"]}]`))
	wantTypes(t, d, "StageStarted")
	if string(d.Runs[0].Request.Input) != `{"body":["x"]}` {
		t.Fatalf("input %s", d.Runs[0].Request.Input)
	}
}

func TestAnEmptyOutputEndsThePipelineWithoutRunningTheRest(t *testing.T) {
	t.Parallel()
	for _, output := range []string{`[]`, `null`, ``} {
		s, id := started(t, "U1", "ops:list | ops:deploy $name")
		d := s.then(succeeded(RunID(id, 0, 0), output))
		wantTypes(t, d, "RequestCompleted")
		if len(d.Runs) != 0 {
			t.Fatalf("output %q started %+v", output, d.Runs)
		}
		wantReply(t, d)
	}
}

func TestABoundArgumentIsCheckedAgainstTheRulesBeforeItRuns(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:list | ops:deploy $name")
	d := s.then(succeeded(RunID(id, 0, 0), `[{"name":"staging"},{"name":"prod"}]`))
	wantTypes(t, d, "InvocationChecked InvocationChecked RequestFailed")
	checks := findAll[InvocationChecked](d.Request)
	if !checks[0].Granted || checks[1].Granted || checks[1].Invocation != 1 || checks[1].Required != "ops:prod" {
		t.Fatalf("checks %+v", checks)
	}
	if len(d.Runs) != 0 {
		t.Fatalf("no invocation of a stage runs when one is denied: %+v", d.Runs)
	}
	wantReply(t, d, "stage 2 (ops:deploy) invocation 2 is denied", "missing permission ops:prod")
}

func TestAVariableThatCannotBeBoundFailsTheRequest(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, output, want string }{
		{"a missing key", `{"other":1}`, "cannot find the variable $name"},
		{"an element that is not an object", `["web"]`, "refers to $name, but the previous stage's output is a string, not an object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, id := started(t, "U1", "ops:list | ops:deploy $name")
			d := s.then(succeeded(RunID(id, 0, 0), tc.output))
			wantTypes(t, d, "RequestFailed")
			if f := find[RequestFailed](t, d.Request); f.Stage != 1 {
				t.Fatalf("failed %+v", f)
			}
			wantReply(t, d, tc.want)
		})
	}
}

func TestARunThatDoesNotSucceedFailsTheRequestAndCancelsTheOthers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		end  func(run.Result) any
		want []string
	}{
		{name: "a failed run", end: func(r run.Result) any { return run.RunFailed{Reason: "exit status 3", Result: r} }, want: []string{"exit status 3", "boom"}},
		{name: "a timed out run", end: func(r run.Result) any { return run.RunTimedOut{TimeoutMS: 30000, Result: r} }, want: []string{"timed out after 30s"}},
		{name: "a cancelled run", end: func(r run.Result) any { return run.RunCancelled{Reason: "by alice", Result: r} }, want: []string{"cancelled: by alice"}},
		{name: "a lost run", end: func(run.Result) any { return run.RunLost{Reason: "executor went away"} }, want: []string{"lost: executor went away"}},
		{name: "an aborted run", end: func(r run.Result) any { r.Aborted = true; return run.RunFailed{Reason: "aborted", Result: r} }, want: []string{"aborted", "boom"}},
		{name: "a run that succeeded but aborted", end: func(r run.Result) any { r.Aborted = true; return run.RunSucceeded{Result: r} }, want: []string{"aborted", "boom"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, id := started(t, "U1", "ops:list | ops:deploy $name")
			trigger := succeeded(RunID(id, 0, 0), `[{"name":"a"},{"name":"b"},{"name":"c"}]`)
			d := s.then(trigger)
			s.record(trigger, d)
			failing := RunID(id, 1, 1)
			ended := tc.end(run.Result{Value: json.RawMessage(`[{"body":["boom"]}]`)})
			got := s.then(RunEvent{RunID: failing, Event: ended.(interface{ EventType() string })})
			wantTypes(t, got, "RequestFailed")
			f := find[RequestFailed](t, got.Request)
			if f.Stage != 1 || f.RunID != failing || !strings.Contains(f.Reason, "stage 2 (ops:deploy), invocation 2 of 3, run "+failing) {
				t.Fatalf("failed %+v", f)
			}
			if want := []string{RunID(id, 1, 0), RunID(id, 1, 2)}; !reflect.DeepEqual(got.Cancel, want) {
				t.Fatalf("cancel %v, want %v", got.Cancel, want)
			}
			reply := wantReply(t, got, tc.want...)
			if !reply.Failed {
				t.Fatal("a failure reply is marked failed")
			}

			s.record(RunEvent{RunID: failing, Event: ended.(interface{ EventType() string })}, got)
			if later := s.then(RunEvent{RunID: RunID(id, 1, 0), Event: run.RunCancelled{}}); !later.IsZero() {
				t.Fatalf("runs ending after the request failed decide nothing: %+v", later)
			}
		})
	}
}

func TestARequestThatTimesOutFailsAndCancelsEveryRunningRun(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:list | ops:deploy $name")
	trigger := succeeded(RunID(id, 0, 0), `[{"name":"a"},{"name":"b"}]`)
	s.record(trigger, s.then(trigger))
	s.record(succeeded(RunID(id, 1, 0), `{}`), Decision{})

	d := s.then(RequestTimedOut{At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	wantTypes(t, d, "RequestFailed")
	if f := find[RequestFailed](t, d.Request); f.Stage != 1 || !strings.Contains(f.Reason, "timed out") {
		t.Fatalf("failed %+v", f)
	}
	if want := []string{RunID(id, 1, 1)}; !reflect.DeepEqual(d.Cancel, want) {
		t.Fatalf("cancel %v, want %v", d.Cancel, want)
	}
	wantReply(t, d, "Failed: the request timed out")
}

func TestATimeoutAfterTheRequestEndedDecidesNothing(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:status")
	trigger := succeeded(RunID(id, 0, 0), `{}`)
	s.record(trigger, s.then(trigger))
	if d := s.then(RequestTimedOut{At: time.Unix(0, 0)}); !d.IsZero() {
		t.Fatalf("decided %+v", d)
	}
}

func TestRunEventsThatDoNotEndARunOrBelongToNoStageDecideNothing(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:status | ops:list")
	for _, e := range []RunEvent{
		{RunID: RunID(id, 0, 0), Event: run.ContainerStarted{}},
		{RunID: RunID(id, 0, 0), Event: run.OutputChunk{Seq: 0, Stream: run.Stdout, Bytes: []byte("x")}},
		succeeded("someone-elses-run", `{}`),
	} {
		if d := s.then(e); !d.IsZero() {
			t.Fatalf("%T decided %+v", e.Event, d)
		}
	}
}

func TestARunOutcomeFoldedBeforeItsStageStartedIsKept(t *testing.T) {
	t.Parallel()
	trigger := received("U1", "ops:status")
	id := RequestID(trigger.Adapter, trigger.MessageID)
	s := given(t)
	d := s.then(trigger)
	// The run finished before the runner recorded StageStarted.
	early := succeeded(RunID(id, 0, 0), `{"ok":true}`)
	s.history = append(s.history, trigger, early)
	s.history = append(s.history, d.Request...)
	got := s.then(early)
	wantTypes(t, got, "RequestCompleted")
}

func TestPendingReplyRecoversAReplyNotYetPosted(t *testing.T) {
	t.Parallel()
	s, id := started(t, "U1", "ops:status")
	trigger := succeeded(RunID(id, 0, 0), `[{"body":["ok"]}]`)
	d := s.then(trigger)
	s.record(trigger, d)
	r := Fold(s.history)
	pending, ok := r.PendingReply()
	if !ok || !reflect.DeepEqual(pending, *d.Reply) {
		t.Fatalf("pending %+v %v, want %+v", pending, ok, *d.Reply)
	}
	r = Evolve(r, ReplyPosted{Adapter: testAdapter, Room: "general", MessageID: "p1"})
	if _, ok := r.PendingReply(); ok {
		t.Fatal("a posted reply is not pending")
	}
	if r.Status() != StatusCompleted || len(r.Runs()) != 1 || r.Runs()[0].Ended != "RunSucceeded" || len(r.RunningRuns()) != 0 {
		t.Fatalf("state %+v", r)
	}
}

func TestAReplyFromOutputCutShortSaysSoAndNamesTheTranscript(t *testing.T) {
	t.Parallel()
	whole := `[{"body":["line one","line two"]}]`
	for _, c := range []struct {
		name   string
		failed bool
		starts string
	}{
		{"a completed run's", false, "line one\nline two\n[output cut: "},
		{"a failed run's", true, "Failed: stage 1 (ops:status)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, id := started(t, "U1", "ops:status")
			runID := RunID(id, 0, 0)
			result := run.Result{Value: json.RawMessage(whole), Truncated: true}
			var ended interface{ EventType() string } = run.RunSucceeded{Result: result}
			if c.failed {
				ended = run.RunFailed{Reason: "exit status 1", Result: result}
			}
			reply := wantReply(t, s.then(RunEvent{RunID: runID, Event: ended}))
			notice := "[output cut: this is its start; the whole transcript: `logbook transcript " + runID + "`]"
			if reply.CutRunID != runID || !strings.HasPrefix(reply.Text, c.starts) || !strings.HasSuffix(reply.Text, "line two\n"+notice) {
				t.Fatalf("reply %+v; want it to end with its last line and %q", reply, notice)
			}
			linked := reply.WithTranscript("https://logbook.example/runs/" + runID + "/transcript")
			if linked.Transcript != "https://logbook.example/runs/"+runID+"/transcript" ||
				!strings.HasSuffix(linked.Text, "line two\n[output cut: this is its start; the whole transcript: https://logbook.example/runs/"+runID+"/transcript]") {
				t.Fatalf("linked reply %+v", linked)
			}
			if again := linked.WithTranscript("https://elsewhere"); again.Text != linked.Text {
				t.Fatalf("a second link changed the reply: %q", again.Text)
			}
		})
	}
	// Output that was not cut says nothing of a cut, and takes no link.
	s, id := started(t, "U1", "ops:status")
	reply := wantReply(t, s.then(succeeded(RunID(id, 0, 0), whole)))
	if reply.CutRunID != "" || strings.Contains(reply.Text, "output cut") || reply.WithTranscript("https://x").Transcript != "" {
		t.Fatalf("a whole output's reply %+v", reply)
	}
}

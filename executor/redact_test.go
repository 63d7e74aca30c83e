package executor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
)

const secretValue = "hunter2:s3cr3t/v@lue+x"

func TestRedactorReplacesEveryFormOfTheValue(t *testing.T) {
	t.Parallel()
	basic := base64.StdEncoding.EncodeToString([]byte("admin:" + secretValue)) // a Basic header
	cases := []struct{ name, in string }{
		{"as it is", "token=" + secretValue + "\n"},
		{"base64", base64.StdEncoding.EncodeToString([]byte(secretValue)) + "\n"},
		{"base64 without padding", base64.RawStdEncoding.EncodeToString([]byte(secretValue)) + "\n"},
		{"base64 url alphabet", base64.URLEncoding.EncodeToString([]byte(secretValue)) + "\n"},
		{"inside a longer base64 text", "Authorization: Basic " + basic + "\n"},
		{"query-escaped", "https://x/?t=" + url.QueryEscape(secretValue) + "\n"},
		{"path-escaped", "https://x/" + url.PathEscape(secretValue) + "\n"},
		{"twice on a line", secretValue + " and " + secretValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := executor.NewRedactor(map[string]string{"API_TOKEN": secretValue})
			out := r.String(c.in)
			if !strings.Contains(out, "[redacted: API_TOKEN]") {
				t.Fatalf("%q became %q: nothing redacted", c.in, out)
			}
			for _, form := range []string{secretValue, base64.RawStdEncoding.EncodeToString([]byte(secretValue))[:12], url.QueryEscape(secretValue)} {
				if strings.Contains(out, form) {
					t.Fatalf("%q became %q, which still holds %q", c.in, out, form)
				}
			}
			if total, by := r.Counts(); total == 0 || by["API_TOKEN"] != total {
				t.Fatalf("counts = %d %v", total, by)
			}
		})
	}
}

func TestRedactorLeavesOtherTextAlone(t *testing.T) {
	t.Parallel()
	r := executor.NewRedactor(map[string]string{"API_TOKEN": secretValue, "EMPTY": ""})
	in := "nothing secret here: hunter1, s3cr3t, dmFsdWU=\n"
	if out := r.String(in); out != in {
		t.Fatalf("%q became %q", in, out)
	}
	if total, _ := r.Counts(); total != 0 {
		t.Fatalf("counted %d replacements in text without the value", total)
	}
}

// A value split across writes, at every place it can be split, is caught,
// and what is held back comes out when the stream ends.
func TestRedactingWriterCatchesAValueSplitAcrossWrites(t *testing.T) {
	t.Parallel()
	text := "before " + secretValue + " after, and a tail that starts like " + secretValue[:5]
	for cut := 1; cut < len(text); cut++ {
		var got bytes.Buffer
		r := executor.NewRedactor(map[string]string{"API_TOKEN": secretValue})
		w := r.Writer(&got)
		_, _ = w.Write([]byte(text[:cut]))
		_, _ = w.Write([]byte(text[cut:]))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want := "before [redacted: API_TOKEN] after, and a tail that starts like " + secretValue[:5]
		if got.String() != want {
			t.Fatalf("cut at %d: got %q, want %q", cut, got.String(), want)
		}
	}
}

// The executor redacts before the chunker cuts: a value printed in two
// writes far enough apart that the first half is flushed as a chunk of
// its own on a short interval is still never recorded, and the run
// records how many replacements it made.
func TestExecutorRedactsSecretsSplitAcrossChunks(t *testing.T) {
	t.Parallel()
	encoded := base64.StdEncoding.EncodeToString([]byte(secretValue))
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, sink executor.Sink) (executor.Outcome, error) {
		sink.ContainerCreated("c-"+spec.RunID, "sha256:abc")
		sink.ContainerStarted("c-"+spec.RunID, false)
		half := len(secretValue) / 2
		_, _ = sink.Stdout().Write([]byte("value: " + secretValue[:half]))
		time.Sleep(30 * time.Millisecond) // well past the 5 ms chunk interval
		_, _ = sink.Stdout().Write([]byte(secretValue[half:] + "\nencoded: " + encoded + "\n"))
		_, _ = sink.Stderr().Write([]byte("error: " + secretValue + "\n"))
		return executor.Outcome{Started: true, ContainerID: "c-" + spec.RunID, Release: func(context.Context) error { return nil }},
			errorWith("the daemon said " + secretValue)
	}}
	e, store := executortest.NewExecutor(t, rt, executor.Config{Chunking: executor.ChunkerConfig{Interval: 5 * time.Millisecond}})
	req := request("r-secret")
	req.Request.EnvNames = []string{"API_TOKEN"}
	req.Request.Secrets = []run.SecretRef{{Name: "API_TOKEN", Layer: "base", Version: 1}}
	req.Env = map[string]string{"API_TOKEN": secretValue}
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	events, _ := store.ReadAll(context.Background(), 1, 1000)
	chunks := 0
	for _, ev := range events {
		if ev.Type == "OutputChunk" {
			chunks++
		}
		for _, form := range []string{secretValue, encoded, base64.StdEncoding.EncodeToString([]byte(secretValue[:8]))} {
			if bytes.Contains(ev.Data, []byte(form)) {
				t.Fatalf("event %s holds %q: %s", ev.Type, form, ev.Data)
			}
		}
	}
	if chunks < 2 {
		t.Fatalf("the output was recorded in %d chunks; the test needs the value's halves apart", chunks)
	}
	payloads := store.Payloads(run.Stream("r-secret"))
	stdout := string(executortest.Output(payloads, run.Stdout))
	if want := "value: [redacted: API_TOKEN]\nencoded: [redacted: API_TOKEN]\n"; stdout != want {
		t.Fatalf("stdout = %q, want %q", stdout, want)
	}
	var redacted *run.OutputRedacted
	for _, p := range payloads {
		if r, ok := p.(run.OutputRedacted); ok {
			redacted = &r
		}
	}
	if redacted == nil || redacted.Replacements != 4 || redacted.BySecret["API_TOKEN"] != 4 {
		t.Fatalf("OutputRedacted = %+v, want 4 replacements: two on stdout, one on stderr, one in the error (types %s)", redacted, types(payloads))
	}
	if lost, ok := executortest.Terminal(t, payloads).(run.RunLost); !ok || !strings.Contains(lost.Reason, "[redacted: API_TOKEN]") {
		t.Fatalf("terminal = %#v, want RunLost with the reason redacted", executortest.Terminal(t, payloads))
	}
}

// A run whose message lacks a secret it names fails before anything runs.
func TestExecutorFailsARunWhoseSecretIsMissing(t *testing.T) {
	t.Parallel()
	rt := &fakeRuntime{fn: echoRun("ran\n", executor.Outcome{})}
	e, store := executortest.NewExecutor(t, rt, executor.Config{})
	req := request("r-nosecret")
	req.Request.EnvNames = []string{"API_TOKEN"}
	req.Request.Secrets = []run.SecretRef{{Name: "API_TOKEN", Layer: "user/bob", Version: 2}}
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	if rt.calls.Load() != 0 {
		t.Fatal("the runtime ran a command whose secret was missing")
	}
	failed, ok := executortest.Terminal(t, store.Payloads(run.Stream("r-nosecret"))).(run.RunFailed)
	if !ok || !strings.Contains(failed.Reason, "API_TOKEN (layer user/bob, version 2) is not available") {
		t.Fatalf("terminal = %#v", failed)
	}
}

// The plain configuration values recorded in the request reach the
// command's environment, and a secret with the same name wins.
func TestExecutorPassesConfigValues(t *testing.T) {
	t.Parallel()
	var gotEnv []string
	rt := &fakeRuntime{fn: func(_ context.Context, spec executor.Spec, _ executor.Sink) (executor.Outcome, error) {
		gotEnv = spec.Env
		return executor.Outcome{}, nil
	}}
	e, _ := executortest.NewExecutor(t, rt, executor.Config{})
	req := request("r-config")
	req.Request.EnvNames = []string{"REGION", "TOKEN"}
	req.Request.Config = []run.ConfigValue{{Name: "REGION", Value: "eu-west-1", Layer: "room/ops"}}
	req.Request.Secrets = []run.SecretRef{{Name: "TOKEN", Layer: "base", Version: 1}}
	req.Env = map[string]string{"TOKEN": "t0ken-value"}
	if err := e.Execute(req); err != nil {
		t.Fatal(err)
	}
	if !containsString(gotEnv, "REGION=eu-west-1") || !containsString(gotEnv, "TOKEN=t0ken-value") {
		t.Fatalf("env = %q", gotEnv)
	}
}

type errorWith string

func (e errorWith) Error() string { return string(e) }

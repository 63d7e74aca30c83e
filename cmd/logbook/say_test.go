package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/template/render"
)

// apiReply is the reply the server sends the API for a command that
// printed output: rendered for the API's plain text, as the dispatcher
// renders it.
func apiReply(output string) dispatch.Reply {
	raw := `[{"name": "web", "state": "up"}, {"name": "db", "state": "down"}]`
	if output != "" {
		raw = output
	}
	return dispatch.RenderReply(dispatch.Reply{Adapter: "api", Text: raw, Value: json.RawMessage(raw)}, nil, render.FormatText)
}

func TestSayPrintsTheReplyAsRenderedForTheAPI(t *testing.T) {
	cases := []struct {
		name  string
		reply dispatch.Reply
		args  []string
		want  string
	}{
		{"a list of objects prints as the default rendering's table, not as JSON",
			apiReply(""), nil, "name  state\n----  -----\nweb   up\ndb    down\n"},
		{"a failure prints Logbook's error template as text",
			dispatch.RenderReply(dispatch.Reply{Adapter: "api", Text: "Denied: no", Failed: true,
				Problem: &dispatch.Problem{Status: dispatch.StatusDenied, Title: "Denied", Message: "stage 1 (ops:deploy): missing permission ops:deploy"}}, nil, render.FormatText),
			nil, "Denied\n  stage 1 (ops:deploy): missing permission ops:deploy\n"},
		{"a reply from a server that sent no rendering prints its raw text",
			dispatch.Reply{Text: "hello\n"}, nil, "hello\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			adminServer(t, tc.reply)
			out, _, err := runCLIOutput(t, append([]string{"say", "ops:status"}, tc.args...)...)
			var ee *exitError
			if err != nil && !(tc.reply.Failed && errors.As(err, &ee) && ee.code == 1) {
				t.Fatalf("say: %v", err)
			}
			if out != tc.want {
				t.Fatalf("given the reply %+v, when said, then expected %q, got %q", tc.reply.Rendered, tc.want, out)
			}
		})
	}
}

func TestSayJSONPrintsTheWholeReplyRawAndRendered(t *testing.T) {
	reply := apiReply("")
	adminServer(t, reply)
	out, _, err := runCLIOutput(t, "say", "--json", "ops:status")
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		RequestID string `json:"request_id"`
		Reply     struct {
			Text     string          `json:"text"`
			Value    json.RawMessage `json:"value"`
			Rendered struct {
				Format     string            `json:"format"`
				Text       string            `json:"text"`
				Directives []json.RawMessage `json:"directives"`
			} `json:"rendered"`
		} `json:"reply"`
	}
	if err := json.Unmarshal([]byte(out), &answer); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	r := answer.Reply
	if answer.RequestID != "r1" || r.Text != reply.Text || r.Rendered.Format != "text" || r.Rendered.Text != reply.Rendered.Text || len(r.Rendered.Directives) != 1 {
		t.Fatalf("--json printed %s", out)
	}
}

func TestAdminCommandsPrintTheReplyAsRendered(t *testing.T) {
	adminServer(t, apiReply(`[{"username": "bob", "email": "bob@example.com"}, {"username": "ada", "email": "ada@example.com"}]`))
	out, _, err := runCLIOutput(t, "user", "list")
	// Rows come out as the CLI's own table (every list command's form);
	// other replies as rendered (TestSayPrintsTheReplyAsRendered).
	if err != nil || !strings.HasPrefix(out, "USERNAME  EMAIL\nbob       bob@example.com\n") {
		t.Fatalf("user list printed %q, %v; want the CLI's table", out, err)
	}
}

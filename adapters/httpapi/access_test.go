package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/internal/samplebundle"
)

// explainFacts is a directory with an admin and alice, the sample bundle
// installed, and tokens "admin-token" and "alice-token".
type explainFacts struct {
	*dispatch.StaticFacts
	tokens map[string]string
}

func (f explainFacts) UserForToken(token string) (access.UserInfo, bool) {
	name, ok := f.tokens[token]
	if !ok {
		return access.UserInfo{}, false
	}
	return f.UserByUsername(name)
}

func newExplainFacts(t testing.TB) explainFacts {
	t.Helper()
	b, err := bundle.Load(samplebundle.Config)
	if err != nil {
		t.Fatal(err)
	}
	dir := access.NewDirectory()
	if err := dir.DeclarePermissions("toolbox", b.Permissions); err != nil {
		t.Fatal(err)
	}
	if err := dir.DeclarePermissions(dispatch.BuiltinBundle, []string{"logbook:admin"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []access.Event{
		access.UserCreated{User: "u-admin", Username: "admin"},
		access.UserCreated{User: "u-alice", Username: "alice"},
		access.RoleCreated{Role: "admin"},
		access.PermissionGranted{Role: "admin", Permission: "logbook:admin"},
		access.PermissionGranted{Role: "admin", Permission: "toolbox:shout"},
		access.GroupCreated{Group: "admin"},
		access.MemberAdded{Group: "admin", User: "u-admin"},
		access.RoleGranted{Group: "admin", Role: "admin"},
	} {
		dir.Apply(e)
	}
	return explainFacts{
		StaticFacts: &dispatch.StaticFacts{
			Directory:   dir,
			Installed:   []dispatch.InstalledBundle{{Bundle: b, Enabled: true}},
			SiteAliases: map[string]string{"loud": "toolbox:shout"},
		},
		tokens: map[string]string{"admin-token": "admin", "alice-token": "alice"},
	}
}

func explain(t *testing.T, srv *httptest.Server, token string, body any) (int, httpapi.AccessExplanation, string) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/v1/access/explain", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var out httpapi.AccessExplanation
	_ = json.Unmarshal(buf.Bytes(), &out)
	return resp.StatusCode, out, buf.String()
}

func TestAccessExplainSaysWhichRuleDecidesEachStage(t *testing.T) {
	t.Parallel()
	facts := newExplainFacts(t)
	api := &httpapi.API{Users: facts, Access: facts}
	srv := httptest.NewServer(httpapi.NewHandler(alwaysReady, func() *httpapi.API { return api }))
	t.Cleanup(srv.Close)

	cases := []struct {
		name    string
		token   string
		body    map[string]string
		status  int
		allowed bool
		check   func(t *testing.T, e httpapi.AccessExplanation, raw string)
	}{
		{"a user's own pipeline is explained stage by stage", "alice-token", map[string]string{"text": "toolbox:echo hi | toolbox:shout"}, 200, false,
			func(t *testing.T, e httpapi.AccessExplanation, raw string) {
				if len(e.Stages) != 2 || !e.Stages[0].Allowed || e.Stages[1].Allowed {
					t.Fatalf("stages = %+v", e.Stages)
				}
				if e.Stages[1].Requires != "toolbox:shout" || !strings.Contains(e.Stages[1].Reason, "missing permission toolbox:shout") {
					t.Fatalf("stage 2 = %+v", e.Stages[1])
				}
				if len(e.Stages[1].Detail.Rules) == 0 || e.Stages[1].Detail.Summary == "" {
					t.Fatalf("stage 2 has no rule detail: %s", raw)
				}
			}},
		{"an admin explains another user's access", "admin-token", map[string]string{"user": "alice", "text": "toolbox:echo hi"}, 200, true,
			func(t *testing.T, e httpapi.AccessExplanation, _ string) {
				if e.User != "alice" || e.Stages[0].Rule == "" {
					t.Fatalf("explanation = %+v", e)
				}
			}},
		{"a site alias is expanded first", "admin-token", map[string]string{"text": "loud"}, 200, true,
			func(t *testing.T, e httpapi.AccessExplanation, _ string) {
				if e.Alias != "loud" || e.Expanded != "toolbox:shout" || e.Stages[0].Command != "toolbox:shout" {
					t.Fatalf("explanation = %+v", e)
				}
			}},
		{"a pipeline that does not parse says the column", "alice-token", map[string]string{"text": `echo "open`}, 200, false,
			func(t *testing.T, e httpapi.AccessExplanation, _ string) {
				if e.Rejected == "" || e.Column != 6 {
					t.Fatalf("explanation = %+v", e)
				}
			}},
		{"another user's access needs logbook:admin", "alice-token", map[string]string{"user": "admin", "text": "echo"}, 403, false, nil},
		{"an unknown user is not found", "admin-token", map[string]string{"user": "zed", "text": "echo"}, 404, false, nil},
		{"the text is required", "admin-token", map[string]string{"user": "alice"}, 400, false, nil},
		{"a bad token is refused", "nope", map[string]string{"text": "echo"}, 401, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			status, e, raw := explain(t, srv, c.token, c.body)
			if status != c.status {
				t.Fatalf("status = %d, want %d: %s", status, c.status, raw)
			}
			if status == 200 && e.Allowed != c.allowed {
				t.Fatalf("allowed = %v, want %v: %s", e.Allowed, c.allowed, raw)
			}
			if c.check != nil {
				c.check(t, e, raw)
			}
		})
	}
}

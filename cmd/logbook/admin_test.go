package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
)

func TestAdminCommandTextIsWhatChatWouldSay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"plain words stay bare", []string{"create", "bob"}, "user create bob"},
		{"a value option given apart is joined", []string{"create", "bob", "--email", "bob@example.com"}, "user create bob --email=bob@example.com"},
		{"a value option given joined stays", []string{"token", "bob", "--note=ci bot"}, `user token bob --note="ci bot"`},
		{"a flag stays a flag", []string{"create", "--site", "st", "echo hi | wc"}, `user create --site st "echo hi | wc"`},
		{"quotes and dollars are escaped", []string{"create", `say "$x" \ ok`}, `user create "say \"\$x\" \\ ok"`},
		{"a number stays text", []string{"x", "1.0"}, `user x "1.0"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := adminCommandText("user", c.args); got != c.want {
				t.Fatalf("adminCommandText(%q) = %s, want %s", c.args, got, c.want)
			}
		})
	}
}

// FuzzAdminQuote: any text quoted for the pipeline language parses back as
// one argument with exactly that text.
func FuzzAdminQuote(f *testing.F) {
	for _, seed := range []string{"bob", "", "b o b", `echo "x" | y`, "${a}", "1.0", "true", "it's", `a\`, `\"`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The pipeline language has no way to write NUL; the server refuses
		// it with its column, which is the right answer for such input.
		if !utf8.ValidString(s) || len(s) > 4096 || strings.ContainsRune(s, 0) {
			return
		}
		p, err := pipeline.Parse("echo " + adminQuote(s))
		if err != nil {
			t.Fatalf("adminQuote(%q) = %s does not parse: %v", s, adminQuote(s), err)
		}
		if len(p.Stages) != 1 || len(p.Stages[0].Args) != 1 {
			t.Fatalf("adminQuote(%q) = %s is not one argument: %+v", s, adminQuote(s), p.Stages)
		}
		if got, ok := p.Stages[0].Args[0].Literal().(string); !ok || got != s {
			t.Fatalf("adminQuote(%q) = %s parses as %#v", s, adminQuote(s), p.Stages[0].Args[0].Literal())
		}
	})
}

// adminServer answers POST /v1/requests with reply, keeping the texts.
func adminServer(t *testing.T, reply dispatch.Reply) *[]string {
	t.Helper()
	var texts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/requests" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"wrong path or token"}`, http.StatusUnauthorized)
			return
		}
		var body struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		texts = append(texts, body.Text)
		_ = json.NewEncoder(w).Encode(map[string]any{"request_id": "r1", "reply": reply})
	}))
	t.Cleanup(srv.Close)
	t.Setenv("LOGBOOK_URL", srv.URL)
	t.Setenv("LOGBOOK_TOKEN", "tok")
	return &texts
}

func TestAdminCommandsSendTheTextAndExitByTheReply(t *testing.T) {
	texts := adminServer(t, dispatch.Reply{Text: "Created user bob."})
	out, _, err := runCLIOutput(t, "user", "create", "bob", "--email", "b@example.com")
	if err != nil || strings.TrimSpace(out) != "Created user bob." {
		t.Fatalf("user create: %q, %v", out, err)
	}
	if _, _, err := runCLIOutput(t, "bundle", "disable", "toolbox"); err != nil {
		t.Fatal(err)
	}
	want := []string{"user create bob --email=b@example.com", "bundle disable toolbox"}
	if strings.Join(*texts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent %q, want %q", *texts, want)
	}

	adminServer(t, dispatch.Reply{Text: "Denied: missing permission logbook:manage_users", Failed: true})
	out, _, err = runCLIOutput(t, "group", "list")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "Denied") {
		t.Fatalf("a denied command: out %q, err %v; want exit 1 with the reply", out, err)
	}
}

func TestBundleInstallSendsTheFileAsBase64(t *testing.T) {
	texts := adminServer(t, dispatch.Reply{Text: "Installed."})
	if _, _, err := runCLIOutput(t, "bundle", "install", "testdata/nope.yaml"); err == nil {
		t.Fatal("a missing file was not an error")
	}
	file := t.TempDir() + "/b.yaml"
	if err := os.WriteFile(file, []byte("name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLIOutput(t, "bundle", "install", file); err != nil {
		t.Fatal(err)
	}
	if len(*texts) != 1 || (*texts)[0] != `bundle install --base64="bmFtZTogeAo="` {
		t.Fatalf("sent %q", *texts)
	}
}

func TestAdminRowsPrintsAListOfObjectsAsATable(t *testing.T) {
	t.Parallel()
	headers, rows, ok := adminRows([]byte(`[{"key":"A","value":"1","layer":"base"},{"key":"B","value":"[secret, version 2]","layer":"user/bob"}]`))
	if !ok || strings.Join(headers, " ") != "KEY VALUE LAYER" || len(rows) != 2 || rows[1][2] != "user/bob" {
		t.Fatalf("adminRows = %v %v %v", headers, rows, ok)
	}
	for _, value := range []string{`[{"body":["text"]}]`, `[{"a":"1"},{"b":"2"}]`, `[{"n":1}]`, `{"a":"1"}`, `[]`} {
		if _, _, ok := adminRows([]byte(value)); ok {
			t.Errorf("adminRows(%s) read a table", value)
		}
	}
}

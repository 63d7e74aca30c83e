package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// leakyConfig is the test bundle's config for a version, in the image at
// /bundle/config.yaml. Version 1.1.0 adds a command and a permission.
func leakyConfig(repo, version string) []byte {
	extra := ""
	perms := ""
	if version != "1.0.0" {
		perms = "permissions:\n  - leaky:read\n"
		extra = "  extra:\n    executable: /bin/leaky\n    description: added in 1.1.0\n    rules:\n      - must have leaky:read\n"
	}
	return []byte(fmt.Sprintf(`cog_bundle_version: 4
name: leaky
version: "%s"
description: prints its secret every way it can
docker:
  image: %s
  tag: "%s"
%sconfig:
  env:
    - var: SECRET_TOKEN
      description: a token the leak command prints
commands:
  marker:
    executable: /bin/leaky
    description: prints the image's marker
    rules:
      - allow
  leak:
    executable: /bin/leaky
    description: prints SECRET_TOKEN, split, encoded and on stderr
    rules:
      - allow
%s`, version, repo, version, perms, extra))
}

// The secret's value: printable, with characters URL encoding changes.
const leakedSecret = "tok3n/Value+with=odd&chars-0123456789"

// A bundle installed from a registry with a login runs pinned to the
// digest it was installed at; its secret, printed split, encoded and on
// stderr, is found nowhere afterwards: not in the database's bytes (the
// SQLite file and its WAL, a Postgres dump), the server's log, any reply
// or the web pages.
func TestABundleFromARegistryKeepsItsSecret(t *testing.T) {
	requireDocker(t)
	eng := dockertest.Engine(t)
	reg := dockertest.StartRegistry(t)
	leaky := dockertest.Leaky(t)
	repo := reg.Host + "/acme/leaky"
	reg.PushBundleImage(t, eng, leaky, repo+":1.0.0", leakyConfig(repo, "1.0.0"), "one")

	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := storeEnv(t)
			s := startServer(t, append(env, "LOGBOOK_RUNTIME=docker", "LOGBOOK_LOG_LEVEL=debug", "LOGBOOK_REGISTRY_CONFIG="+reg.ConfigDir,
				"LOGBOOK_SECRET_KEY_FILE="+keyFile(t))...)
			s.waitReady(t)
			token := s.token(t)
			run := func(args ...string) string {
				t.Helper()
				out, err := cli(t, s, token, env, args...)
				if err != nil {
					t.Fatalf("logbook %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}

			// Install from the registry: pinned, and warned about the
			// variable nothing sets.
			out := run("bundle", "install", repo+":1.0.0")
			if !strings.Contains(out, "from "+repo+"@sha256:") || !strings.Contains(out, "SECRET_TOKEN has no value") {
				t.Fatalf("install said %q", out)
			}
			if out, err := cli(t, s, token, env, "say", "leaky:marker"); err == nil || !strings.Contains(out, "logbook secret set leaky SECRET_TOKEN") {
				t.Fatalf("a run without its variable: %q, %v", out, err)
			}
			secretSet := exec.Command(binary, "secret", "set", "leaky", "SECRET_TOKEN")
			secretSet.Env = append(os.Environ(), "LOGBOOK_URL=http://"+s.addr, "LOGBOOK_TOKEN="+token)
			secretSet.Stdin = strings.NewReader(leakedSecret + "\n")
			if out, err := secretSet.CombinedOutput(); err != nil || !strings.Contains(string(out), "1") {
				t.Fatalf("secret set: %s %v", out, err)
			}
			if out := run("say", "leaky:marker"); out != "marker one\n" {
				t.Fatalf("marker = %q", out)
			}
			leak := run("say", "--json", "leaky:leak")
			t.Logf("the leak's reply: %d bytes, %d redactions", len(leak), strings.Count(leak, "[redacted: SECRET_TOKEN]"))
			if !strings.Contains(leak, "[redacted: SECRET_TOKEN]") {
				t.Fatalf("the leak's reply shows no redaction: %.500s", leak)
			}

			if name == "sqlite" {
				registryFlows(t, s, token, env, eng, reg, leaky, repo, run)
			}

			// The value is nowhere.
			forms := []string{leakedSecret, base64.StdEncoding.EncodeToString([]byte(leakedSecret)), url.QueryEscape(leakedSecret)}
			where := map[string][]byte{"the server's log": []byte(s.logs.String()), "the leak's reply": []byte(leak)}
			for _, path := range []string{"/history", "/requests/" + requestIDOf(t, leak), "/runs/" + requestIDOf(t, leak) + "-s0-i0", "/runs/" + requestIDOf(t, leak) + "-s0-i0/transcript"} {
				where["page "+path] = webPage(t, s, token, path)
			}
			events := storedEventsRaw(t, env)
			where["the events"] = events
			if name == "sqlite" {
				dir := strings.TrimPrefix(env[0], "LOGBOOK_DATA_DIR=")
				for _, f := range []string{"logbook.db", "logbook.db-wal", "logbook.db-views", "logbook.db-views-wal"} {
					b, _ := os.ReadFile(filepath.Join(dir, f))
					where[f] = b
				}
			} else {
				where["pg_dump"] = pgDump(t, env[0])
			}
			for place, b := range where {
				for _, form := range forms {
					if bytes.Contains(b, []byte(form)) {
						t.Errorf("%s holds the secret (%q)", place, form)
					}
				}
			}
			if !bytes.Contains(events, []byte(`"replacements":`)) || !bytes.Contains(events, []byte("OutputRedacted")) {
				t.Error("the run recorded no OutputRedacted")
			}
		})
	}
}

// registryFlows: a new tag upgrades; the old tag pushed again with other
// content changes nothing installed; a wrong login, a missing image, an
// image without a config and a config that does not validate each fail
// clearly and record nothing.
func registryFlows(t *testing.T, s *server, token string, env []string, eng docker.Engine, reg dockertest.Registry, leaky []byte, repo string, run func(...string) string) {
	reg.PushBundleImage(t, eng, leaky, repo+":1.1.0", leakyConfig(repo, "1.1.0"), "two")
	out := run("bundle", "upgrade", "leaky")
	t.Logf("bundle upgrade leaky:\n%s", out)
	for _, want := range []string{"newer than 1.0.0: 1.1.0", "Upgraded bundle leaky from 1.0.0 to 1.1.0", "Commands added: extra", "Permissions added: leaky:read", "Image: " + repo + "@sha256:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("upgrade said %q; want %q", out, want)
		}
	}
	if out := run("say", "leaky:marker"); out != "marker two\n" {
		t.Fatalf("after the upgrade marker = %q", out)
	}
	if out := run("bundle", "upgrade", "leaky"); !strings.Contains(out, "is up to date") {
		t.Fatalf("a second upgrade said %q", out)
	}

	// 1.1.0 pushed again with other content: the installed version still
	// runs the bytes it was installed at.
	reg.PushBundleImage(t, eng, leaky, repo+":1.1.0", leakyConfig(repo, "1.1.0"), "evil")
	if out := run("say", "leaky:marker"); out != "marker two\n" {
		t.Fatalf("after the tag moved, marker = %q (the pin did not hold)", out)
	}

	failures := map[string][]string{
		"a missing image": {"bundle", "install", repo + ":9.9.9"},
		"no config":       {"bundle", "install", reg.Host + "/acme/noconfig:1.0.0"},
		"a bad config":    {"bundle", "install", reg.Host + "/acme/badconfig:1.0.0"},
	}
	reg.PushBundleImage(t, eng, leaky, reg.Host+"/acme/noconfig:1.0.0", nil, "x")
	reg.PushBundleImage(t, eng, leaky, reg.Host+"/acme/badconfig:1.0.0", []byte("cog_bundle_version: 4\nname: bad\n"), "x")
	says := map[string]string{"a missing image": "cannot pull", "no config": "has no /bundle/config.yaml", "a bad config": "does not load"}
	for what, args := range failures {
		out, err := cli(t, s, token, env, args...)
		if err == nil || !strings.Contains(out, says[what]) {
			t.Errorf("installing %s: %q, %v; want a failure saying %q", what, out, err, says[what])
		}
	}
	// A wrong password: the server reads a login that does not match.
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":wrong"))
	realConfig := filepath.Join(reg.ConfigDir, "config.json")
	good, _ := os.ReadFile(realConfig)
	if err := os.WriteFile(realConfig, []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, s, token, env, "bundle", "install", reg.Host+"/acme/badconfig:1.0.0")
	if err == nil || !strings.Contains(out, "cannot pull") || strings.Contains(out, "wrong") {
		t.Errorf("a wrong password: %q, %v", out, err)
	}
	if err := os.WriteFile(realConfig, good, 0o600); err != nil {
		t.Fatal(err)
	}
	// No failure recorded a bundle: the only bundle streams are the
	// sample's and leaky's.
	for _, e := range storedEvents(t, env) {
		if strings.HasPrefix(e.Stream, "bundle-") && e.Stream != "bundle-toolbox" && e.Stream != "bundle-leaky" {
			t.Errorf("a failed install recorded %s in %s", e.Type, e.Stream)
		}
	}
	if out := run("bundle", "list"); strings.Contains(out, "bad") {
		t.Errorf("bundle list after the failures: %q", out)
	}

	out = run("bundle", "search", reg.Host+"/acme")
	for _, want := range []string{repo, "1.0.0, 1.1.0", reg.Host + "/acme/noconfig"} {
		if !strings.Contains(out, want) {
			t.Errorf("search said %q; want %q", out, want)
		}
	}
}

// keyFile makes a secret key file for a server.
func keyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.key")
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func requestIDOf(t *testing.T, sayJSON string) string {
	t.Helper()
	i := strings.Index(sayJSON, `"request_id": "`)
	if i < 0 {
		t.Fatalf("no request id in %.200s", sayJSON)
	}
	rest := sayJSON[i+len(`"request_id": "`):]
	return rest[:strings.Index(rest, `"`)]
}

// webPage logs in to the web UI with token and reads one page.
func webPage(t *testing.T, s *server, token, path string) []byte {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm("http://"+s.addr+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get("http://" + s.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return b
}

func storedEventsRaw(t *testing.T, env []string) []byte {
	t.Helper()
	cmd := exec.Command(binary, "events", "tail", "--from", "1", "--no-follow", "--json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("events tail: %v", err)
	}
	return out
}

// pgDump dumps the schema a test's store lives in.
func pgDump(t *testing.T, databaseEnv string) []byte {
	t.Helper()
	u, err := url.Parse(strings.TrimPrefix(databaseEnv, "LOGBOOK_DATABASE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	out, err := exec.CommandContext(context.Background(), "pg_dump", "--schema="+schema, "--data-only", testenv.PostgresURL(t)).Output()
	if err != nil {
		testenv.Missing(t, "pg_dump", err.Error())
	}
	return out
}

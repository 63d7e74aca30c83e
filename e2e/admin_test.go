package e2e

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var issuedToken = regexp.MustCompile(`lbk_[A-Za-z0-9_-]{43}`)

// exitCode is the exit status of a cli call (0 when it succeeded).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// An admin builds bob's access from the command line; bob's own token
// runs toolbox:shout only once his group holds a role granting it, and the
// token bob got is nowhere in the log.
func TestAnAdminGrantsBobAccessFromTheCLI(t *testing.T) {
	for name, storeEnv := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := storeEnv(t)
			s := startServer(t, append(env, "LOGBOOK_RUNTIME=process")...)
			s.waitReady(t)
			admin := s.token(t)
			run := func(token string, args ...string) (string, int) {
				t.Helper()
				out, err := cli(t, s, token, env, args...)
				if code := exitCode(err); code < 0 {
					t.Fatalf("%v: %v", args, err)
				}
				return out, exitCode(err)
			}
			for _, args := range [][]string{
				{"user", "create", "bob", "--email", "bob@example.com"},
				{"user", "link", "bob", "slack", "U0BOB"},
				{"group", "create", "shouters"},
				{"group", "add", "shouters", "bob"},
				{"role", "create", "shouter"},
				{"role", "grant", "shouter", "toolbox:shout"},
			} {
				if out, code := run(admin, args...); code != 0 {
					t.Fatalf("logbook %s exited %d: %s", strings.Join(args, " "), code, out)
				}
			}
			out, code := run(admin, "user", "token", "bob")
			bob := issuedToken.FindString(out)
			if code != 0 || bob == "" {
				t.Fatalf("user token bob exited %d: %s", code, out)
			}

			if out, code := run(admin, "access", "explain", "--user", "bob", "toolbox:shout hi"); code != 1 || !strings.Contains(out, "missing permission toolbox:shout") && !strings.Contains(out, "lacks toolbox:shout") {
				t.Fatalf("access explain before the grant exited %d:\n%s", code, out)
			}
			if out, code := run(bob, "say", "toolbox:shout hi"); code != 1 || !strings.Contains(out, "Denied") {
				t.Fatalf("bob's shout before the grant exited %d: %s", code, out)
			}
			if out, code := run(admin, "group", "grant", "shouters", "shouter"); code != 0 {
				t.Fatalf("group grant exited %d: %s", code, out)
			}
			// The process runtime runs the config's /bin/echo, which ignores
			// the Cog protocol's COG_ARGV_*; what matters here is that the run
			// was allowed and succeeded.
			if out, code := run(bob, "say", "toolbox:shout hi"); code != 0 || strings.Contains(out, "Denied") {
				t.Fatalf("bob's shout after the grant exited %d: %q", code, out)
			}
			if out, code := run(admin, "access", "explain", "--user", "bob", "toolbox:shout hi"); code != 0 || !strings.Contains(out, "allowed") {
				t.Fatalf("access explain after the grant exited %d:\n%s", code, out)
			}
			if out, code := run(bob, "user", "list"); code != 1 || !strings.Contains(out, "logbook:manage_users") {
				t.Fatalf("bob listing users exited %d: %s", code, out)
			}

			events := storedEvents(t, env)
			for _, e := range events {
				if strings.Contains(string(e.Data), bob) {
					t.Fatalf("bob's token is in the log at position %d (%s %s)", e.Position, e.Stream, e.Type)
				}
			}
			if !strings.Contains(strings.Join(typesOf(events, "group-shouters"), " "), "RoleGranted") {
				t.Fatalf("group-shouters = %v", typesOf(events, "group-shouters"))
			}
		})
	}
}

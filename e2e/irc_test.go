package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/irc/ircdtest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// TestIRCCommandsAreAnsweredInTheChannelAndSurviveAServerRestart runs
// `logbook serve` on SQLite connected to a real ngircd. alice, linked to a
// Logbook user by her nick, types commands in #ops; the bot answers there.
// Then ngircd restarts in the middle of a long reply: the reply is
// completed after the bot reconnects, and no line of it arrives twice.
func TestIRCCommandsAreAnsweredInTheChannelAndSurviveAServerRestart(t *testing.T) {
	ircd := ircdtest.Start(t, ircdtest.Options{})
	env := []string{"LOGBOOK_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}
	s := startServer(t, append(env,
		"LOGBOOK_RUNTIME=process",
		"LOGBOOK_IRC_SERVER="+ircd.Addr,
		"LOGBOOK_IRC_NICK=logbook",
		"LOGBOOK_IRC_CHANNELS=#ops",
		"LOGBOOK_IRC_TLS=0",
		// Slow enough that a restart lands in the middle of a long reply.
		"LOGBOOK_IRC_LINES_PER_SECOND=4",
		"LOGBOOK_IRC_BURST=1",
		// help grows with every builtin; the test needs it whole.
		"LOGBOOK_IRC_MAX_LINES=100",
	)...)
	s.waitReady(t)
	admin := s.token(t)
	mustCLI(t, s, admin, env, "user", "create", "alice", "--email", "alice@example.com")
	mustCLI(t, s, admin, env, "user", "link", "alice", "irc", "alice")

	alice := ircdtest.Dial(t, ircd.Addr, "alice")
	alice.Join("#ops")
	alice.WaitFor("#ops", "logbook", 20*time.Second)

	alice.Say("#ops", "!echo hello")
	if got := alice.Privmsgs("logbook", 1, 15*time.Second); len(got) != 1 || got[0].Params[0] != "#ops" || got[0].Params[1] != "hello" {
		t.Fatalf("after !echo hello alice got %v; want \"hello\" in #ops", bodies(got))
	}
	type historyRow struct {
		Adapter  string `json:"adapter"`
		Room     string `json:"room"`
		ChatUser string `json:"chat_user"`
		Username string `json:"username"`
		Text     string `json:"text"`
	}
	// A private message is a command without the prefix, answered in private.
	alice.Say("logbook", "echo just between us")
	if got := alice.Privmsgs("logbook", 1, 15*time.Second); len(got) != 1 || got[0].Params[0] != "alice" || got[0].Params[1] != "just between us" {
		t.Fatalf("after a private echo alice got %v; want \"just between us\" to her alone", bodies(got))
	}

	// The history view catches up with the log on its own schedule.
	testenv.Eventually(t, "history shows alice's request from irc", func() bool {
		var page struct {
			Requests []historyRow `json:"requests"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, s, admin, env, "history", "--json")), &page); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(page.Requests, historyRow{Adapter: "irc", Room: "ops", ChatUser: "alice", Username: "alice", Text: "echo hello"})
	})

	// The reply to compare with: the same command through the API.
	var want []string
	for _, l := range strings.Split(mustCLI(t, s, admin, env, "say", "help"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			want = append(want, l)
		}
	}
	if len(want) < 12 {
		t.Fatalf("help has %d lines; the test needs a reply long enough to cut", len(want))
	}

	alice.Say("#ops", "!help")
	before := alice.Privmsgs("logbook", 3, 15*time.Second)
	if len(before) != 3 {
		t.Fatalf("the reply to !help did not start: %v", bodies(before))
	}
	ircd.Restart()
	// What the old connection still relayed before it closed.
	for done := false; !done; {
		select {
		case l := <-alice.Lines:
			if l.Command == "PRIVMSG" && strings.EqualFold(l.Nick(), "logbook") {
				before = append(before, l)
			}
		case <-alice.Closed():
			done = true
		}
	}
	alice = ircdtest.Dial(t, ircd.Addr, "alice")
	alice.Join("#ops")
	after := alice.Privmsgs("logbook", len(want)-len(before), 30*time.Second)
	var got []string
	for _, l := range append(before, after...) {
		got = append(got, strings.TrimSpace(l.Params[1]))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("across the restart alice got %d lines (%d before it):\n%s\nwant each of these %d once, in order:\n%s",
			len(got), len(before), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	if extra := alice.Privmsgs("logbook", 1, 2*time.Second); len(extra) != 0 {
		t.Fatalf("after the whole reply, more lines came: %v", bodies(extra))
	}
	t.Logf("%d lines before the restart, %d after", len(before), len(after))
}

func bodies(lines []ircdtest.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Raw)
	}
	return out
}

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func runWith(t *testing.T, name string, env map[string]string, stdin string) (string, error) {
	t.Helper()
	inv := invocationFromEnv(func(k string) string { return env[k] }, nil)
	var out bytes.Buffer
	err := run(name, inv, strings.NewReader(stdin), &out)
	return out.String(), err
}

func TestToolboxCommands(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		command string
		env     map[string]string
		stdin   string
		want    string
	}{
		{"echo joins its Cog arguments", "echo", map[string]string{"COG_ARGC": "2", "COG_ARGV_0": "hello", "COG_ARGV_1": "world"}, "", "hello world\n"},
		{"wc counts the lines of Cog's plain-text output", "wc", nil, `[{"body":["one two","three"]}]`, "JSON\n{\"chars\":12,\"lines\":2,\"words\":3}\n"},
		{"wc counts raw text lines too", "wc", nil, "a b\nc\n", "JSON\n{\"chars\":4,\"lines\":2,\"words\":3}\n"},
		{"sort orders its input lines", "sort", nil, `[{"body":["pear","apple","fig"]}]`, "apple\nfig\npear\n"},
		{"sort --reverse --numeric orders numbers downwards", "sort", map[string]string{"COG_OPT_REVERSE": "true", "COG_OPT_NUMERIC": "true"}, `[{"body":["9","10","2"]}]`, "10\n9\n2\n"},
		{"sort takes arguments instead of input", "sort", map[string]string{"COG_ARGC": "2", "COG_ARGV_0": "b", "COG_ARGV_1": "a"}, "", "a\nb\n"},
		{"seq lists numbers as objects for the next stage", "seq", map[string]string{"COG_ARGC": "2", "COG_ARGV_0": "2", "COG_ARGV_1": "4"}, "", "JSON\n[{\"n\":2},{\"n\":3},{\"n\":4}]\n"},
		{"sleep waits and says so", "sleep", map[string]string{"COG_ARGC": "1", "COG_ARGV_0": "0.01"}, "", "slept 0.01s\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := runWith(t, c.command, c.env, c.stdin)
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestToolboxDatePrintsNowInUTC(t *testing.T) {
	t.Parallel()
	got, err := runWith(t, "date", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	when, err := time.Parse(time.RFC3339, strings.TrimSpace(got))
	if err != nil || time.Since(when) > time.Minute || time.Since(when) < -time.Minute {
		t.Fatalf("date printed %q", got)
	}
}

func TestToolboxRejectsBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		command string
		env     map[string]string
		mention string
	}{
		{"an unknown command lists the known ones", "rm", nil, "try one of date, echo, seq, sleep, sort, wc"},
		{"sleep without seconds", "sleep", nil, "expected one argument"},
		{"sleep with words", "sleep", map[string]string{"COG_ARGC": "1", "COG_ARGV_0": "soon"}, `"soon" is not a number`},
		{"seq over a huge range", "seq", map[string]string{"COG_ARGC": "1", "COG_ARGV_0": "1000000"}, "at most 10000 apart"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := runWith(t, c.command, c.env, "")
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("err = %v, want it to mention %q", err, c.mention)
			}
		})
	}
}

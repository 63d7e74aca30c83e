package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
)

func TestTheAgentsArgumentsAreReadStrictly(t *testing.T) {
	cases := []struct {
		args    []string
		want    agentArgs
		refused bool
	}{
		{args: nil, want: agentArgs{}},
		{args: []string{agentproto.OneRunArg}, want: agentArgs{oneRun: true}},
		{args: []string{agentproto.OneRunArg, agentproto.PrimeArg + "/bin/echo", agentproto.PrimeArg + "sh"},
			want: agentArgs{oneRun: true, prime: []string{"/bin/echo", "sh"}}},
		{args: []string{agentproto.PrimeArg}, refused: true},
		{args: []string{"--two-runs"}, refused: true},
	}
	for _, c := range cases {
		got, err := parseArgs(c.args)
		if c.refused {
			if err == nil {
				t.Errorf("%q: accepted as %+v, want refused", c.args, got)
			}
			continue
		}
		if err != nil || got.oneRun != c.want.oneRun || !slices.Equal(got.prime, c.want.prime) {
			t.Errorf("%q: %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add(agentproto.OneRunArg + "\x00" + agentproto.PrimeArg + "/bin/echo")
	f.Add(agentproto.PrimeArg)
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		got, err := parseArgs(args)
		if err != nil {
			return
		}
		if len(got.prime) > len(args) || slices.Contains(got.prime, "") {
			t.Fatalf("%q read as %+v", args, got)
		}
	})
}

func TestPrimingReadsRegularFilesAndSkipsWhatCouldBlock(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(dir, "tool")
	if err := os.WriteFile(binary, make([]byte, 3000), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo") // opening it to read would wait for a writer
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	cases := map[string]struct {
		paths []string
		want  int64
	}{
		"a regular file":                  {[]string{binary}, 3000},
		"a name looked up in PATH":        {[]string{"tool"}, 3000},
		"a FIFO":                          {[]string{fifo}, 0},
		"a device":                        {[]string{"/dev/zero"}, 0},
		"a file that says it is empty":    {[]string{empty, "/proc/self/status"}, 0},
		"missing files and missing names": {[]string{filepath.Join(dir, "gone"), "no-such-tool"}, 0},
		"several, each once read":         {[]string{binary, fifo, "tool"}, 6000},
	}
	for name, c := range cases {
		if got := prime(c.paths); got != c.want {
			t.Errorf("%s: read %d bytes, want %d", name, got, c.want)
		}
	}
}

package chat

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRecognize(t *testing.T) {
	a := Addressing{Mentions: []string{"logbook", "<@U0BOT>"}}
	cases := []struct {
		text   string
		direct bool
		want   string
		ok     bool
	}{
		{"!echo hi", false, "echo hi", true},
		{"  !echo hi  ", false, "echo hi", true},
		{"!!", false, "!!", true},
		{"!", false, "", false},
		{"! that was close", false, "", false},
		{"echo hi", false, "", false},
		{"echo hi", true, "echo hi", true},
		{"!echo hi", true, "echo hi", true},
		{"logbook: echo hi", false, "echo hi", true},
		{"Logbook, !echo hi", false, "echo hi", true},
		{"<@U0BOT> which echo", false, "which echo", true},
		{"logbook !!", false, "!!", true},
		{"logbooks are great", false, "", false},
		{"logbook:", false, "", false},
		{"", true, "", false},
	}
	for _, c := range cases {
		got, ok := a.Recognize(c.text, c.direct)
		if got != c.want || ok != c.ok {
			t.Errorf("Recognize(%q, direct=%v) = %q, %v; want %q, %v", c.text, c.direct, got, ok, c.want, c.ok)
		}
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		text string
		max  int
		want []string
	}{
		{"", 10, []string{""}},
		{"short", 10, []string{"short"}},
		{"line one\nline two\nline three", 18, []string{"line one\nline two", "line three"}},
		{"aaaa bbbb cccc", 10, []string{"aaaa bbbb ", "cccc"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"ééé", 5, []string{"éé", "é"}},
	}
	for _, c := range cases {
		got := Split(c.text, c.max)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("Split(%q, %d) = %q; want %q", c.text, c.max, got, c.want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("line one\nline two", 8)
	f.Add("ééé ü", 5)
	f.Fuzz(func(t *testing.T, text string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		pieces := Split(text, max)
		limit := max
		if limit < utf8.UTFMax {
			limit = utf8.UTFMax
		}
		total := 0
		for _, p := range pieces {
			if len(p) > limit {
				t.Fatalf("piece of %d bytes over the limit %d", len(p), limit)
			}
			if utf8.ValidString(text) && !utf8.ValidString(p) {
				t.Fatalf("piece %q cuts a UTF-8 sequence", p)
			}
			total += len(p)
		}
		if dropped := len(text) - total; dropped < 0 || dropped > len(pieces)-1 {
			t.Fatalf("pieces hold %d of %d bytes over %d pieces", total, len(text), len(pieces))
		}
	})
}

func FuzzRecognize(f *testing.F) {
	f.Add("!echo hi", false)
	f.Add("logbook: !!", false)
	f.Fuzz(func(t *testing.T, text string, direct bool) {
		a := Addressing{Mentions: []string{"logbook"}}
		got, ok := a.Recognize(text, direct)
		if ok && got == "" {
			t.Fatalf("recognized %q as an empty command", text)
		}
		if !ok && got != "" {
			t.Fatalf("chatter %q returned text %q", text, got)
		}
		if ok && len(got) > len(text) {
			t.Fatalf("command %q longer than the message %q", got, text)
		}
	})
}

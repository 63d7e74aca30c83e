package main

import (
	"bytes"
	"strings"
	"testing"
)

// A room holding a newline used to forge a row of `logbook history`, and
// text holding ESC [2J cleared the terminal: every cell is escaped.
func TestTableCellsCannotForgeRowsOrDriveTheTerminal(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, cell, want string }{
		{"plain text is kept", "deploy prod", "deploy prod"},
		{"unicode text is kept", "déploiement ✓", "déploiement ✓"},
		{"a newline cannot start a row", "ops\nreq-forged  2026-01-01  admin", `ops\nreq-forged  2026-01-01  admin`},
		{"a carriage return is shown", "a\rb", `a\rb`},
		{"a tab cannot move a column", "a\tb", `a\tb`},
		{"an escape sequence cannot clear the screen", "x\x1b[2J", `x\x1b[2J`},
		{"a bell is shown", "\a", `\a`},
		{"a right-to-left override is shown", "abc\u202efed", `abc\u202efed`},
		{"a C1 control is shown", "a\u009bb", `a\u009bb`},
		{"invalid UTF-8 is shown as bytes", "a\xffb", `a\xffb`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := escapeCell(c.cell); got != c.want {
				t.Errorf("escapeCell(%q) = %q, want %q", c.cell, got, c.want)
			}
		})
	}
	var out bytes.Buffer
	tab := newTable(&out, "ROOM", "TEXT")
	tab.Row("ops\nforged", "clear\x1b[2J")
	if err := tab.Flush(); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out.String(), "\n"); lines != 2 || strings.ContainsRune(out.String(), '\x1b') {
		t.Fatalf("table = %q, want a header and one row with nothing raw", out.String())
	}
}

package webui

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/projections"
)

func chunk(stream, text string, atMS int) projections.Chunk {
	return projections.Chunk{Stream: stream, Bytes: []byte(text), Offset: time.Duration(atMS) * time.Millisecond}
}

// lineString writes lines as "N[flags]: text", segments apart with "|",
// stderr ones in brackets.
func lineString(lines []outputLine) string {
	var b strings.Builder
	for _, l := range lines {
		flags := ""
		for flag, on := range map[string]bool{"e": l.Stderr, "m": l.Marker, "f": l.Folded} {
			if on {
				flags += flag
			}
		}
		var parts []string
		for _, s := range l.Segments {
			if s.Stderr {
				parts = append(parts, fmt.Sprintf("[%s@%d]", s.Text, s.AtMS))
			} else {
				parts = append(parts, fmt.Sprintf("%s@%d", s.Text, s.AtMS))
			}
		}
		fmt.Fprintf(&b, "%d%s@%d: %s", l.N, flags, l.AtMS, strings.Join(parts, "|"))
		if l.JSON != "" {
			fmt.Fprintf(&b, " json(%d-%d)=%q", l.N, l.Last, l.JSON)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestOutputLinesPutACharacterCutByAChunkTogether(t *testing.T) {
	lines := outputLines([]projections.Chunk{chunk("stdout", "caf\xc3", 0), chunk("stderr", "x", 5), chunk("stdout", "\xa9 \xe2\x82", 10)})
	want := "1@0: caf@0|[x@5]|é @10|\uFFFD@10\n"
	if got := lineString(lines); got != want {
		t.Fatalf("lines:\n%s\nwant:\n%s", got, want)
	}
}

func TestOutputLinesNumberTheOutputAsPrintedAndMarkStderr(t *testing.T) {
	lines := outputLines([]projections.Chunk{
		chunk("stdout", "one\ntw", 0),
		chunk("stderr", "o warn\n\n", 10),
		chunk("stderr", "all err\n", 20),
		chunk("stdout", "no newline", 30),
	})
	want := "1@0: one@0\n2@0: tw@0|[o warn@10]\n3e@10: [@10]\n4e@20: [all err@20]\n5@30: no newline@30\n"
	if got := lineString(lines); got != want {
		t.Fatalf("lines:\n%s\nwant:\n%s", got, want)
	}
}

func TestCogsJSONMarkerIsHiddenAndItsValuePrettyPrinted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []projections.Chunk
		want   string
	}{
		{"the value after the marker, protocol lines aside", []projections.Chunk{
			chunk("stdout", "JSON\n{\"a\":1,\n", 0), chunk("stdout", "COGCMD_INFO: mid\n\"b\":[2]}\n", 5)},
			"1m@0: JSON@0\n2@0: {\"a\":1,@0 json(2-4)=\"{\\n  \\\"a\\\": 1,\\n  \\\"b\\\": [\\n    2\\n  ]\\n}\"\n3@5: COGCMD_INFO: mid@5\n4f@5: \"b\":[2]}@5\n"},
		{"a value cut short is left as printed", []projections.Chunk{chunk("stdout", "JSON\n{\"a\": [1,", 0)},
			"1@0: JSON@0\n2@0: {\"a\": [1,@0\n"},
		{"output without the marker is left as printed", []projections.Chunk{chunk("stdout", "{\"a\":1}\n", 0)},
			"1@0: {\"a\":1}@0\n"},
		{"a JSON line on stderr is no marker", []projections.Chunk{chunk("stderr", "JSON\n", 0), chunk("stdout", "[1]\n", 1)},
			"1e@0: [JSON@0]\n2@1: [1]@1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := outputLines(tc.chunks)
			foldCogJSON(lines)
			if got := lineString(lines); got != tc.want {
				t.Fatalf("lines:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// FuzzOutputLines: any output, cut into chunks anywhere and spread over
// both streams, reads back from its lines as printed, and its page markup
// holds exactly one block per line and no markup from the output.
func FuzzOutputLines(f *testing.F) {
	f.Add([]byte("JSON\n{\"a\": 1}\n"), uint8(3), uint8(1))
	f.Add([]byte("one\ntwo\n<script>x</script>\n"), uint8(5), uint8(2))
	f.Add([]byte("\xff\x00\n\n"), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, output []byte, cut, stderrEvery uint8) {
		var chunks []projections.Chunk
		for i, rest := 0, output; len(rest) > 0; i++ {
			n := min(len(rest), int(cut)+1)
			stream := "stdout"
			if stderrEvery > 0 && i%int(stderrEvery) == 0 {
				stream = "stderr"
			}
			chunks = append(chunks, chunk(stream, string(rest[:n]), i))
			rest = rest[n:]
		}
		lines := outputLines(chunks)
		var texts []string
		for _, l := range lines {
			texts = append(texts, l.text())
		}
		// One stream reads back as printed (a run of invalid bytes may be
		// one U+FFFD or several); two may put a character cut between
		// them after the other stream's next chunk.
		collapse := regexp.MustCompile("\uFFFD+")
		want := collapse.ReplaceAllString(strings.TrimSuffix(displayText(output), "\n"), "\uFFFD")
		if got := collapse.ReplaceAllString(strings.Join(texts, "\n"), "\uFFFD"); stderrEvery <= 1 && got != want && !(len(output) == 0 && got == "") {
			t.Fatalf("lines read back %q, want %q", got, want)
		}
		foldCogJSON(lines)
		page := string(linesHTML(lines))
		if n := strings.Count(page, `<div class="line`); n != len(lines) {
			t.Fatalf("%d line blocks for %d lines", n, len(lines))
		}
		stripped := page
		for _, tag := range []string{`<div class="line`, "</div>", `<a class="ln"`, "</a>", `<span class="tx`, `<span data-t=`, `<span class="stderr"`, "<span>", "</span>"} {
			stripped = strings.ReplaceAll(stripped, tag, "")
		}
		if strings.Contains(stripped, "<") {
			t.Fatalf("output reached the markup: %q", page)
		}
	})
}

package executor

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Redactor replaces the values of a run's secrets in what the run prints
// and in what is said about it (reasons, errors) before anything is
// recorded, with "[redacted: NAME]". Besides each value as it is, it finds
// the value's base64 forms (standard and URL alphabets, with and without
// padding, and the part of a longer base64 text that the value alone
// determines, so "user:password" encoded for a Basic header is caught),
// its URL-encoded forms (query and path escaping) and its JSON-escaped
// form. It counts what it replaced. Safe for concurrent use.
//
// A streaming replacer for a handful of literal patterns is small enough
// that no library is worth its weight here; the algorithm is: at each
// byte, the longest pattern that starts there wins; a tail that may be the
// start of a pattern is held back until more output comes or the stream
// ends, so a value split across two writes (or two chunks) is caught.
type Redactor struct {
	patterns []redactPattern // longest first
	byFirst  [256][]int      // first byte → indexes into patterns

	mu     sync.Mutex
	counts map[string]int
}

type redactPattern struct {
	text        []byte
	replacement []byte
}

// minBase64Core is the shortest base64 text derived from a value's middle
// that is redacted: shorter runs of base64 characters appear by chance.
const minBase64Core = 8

// NewRedactor builds a redactor for secrets, by name. Empty values are
// skipped: they cannot be found.
func NewRedactor(secrets map[string]string) *Redactor {
	r := &Redactor{counts: map[string]int{}}
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		value := secrets[name]
		if value == "" {
			continue
		}
		replacement := []byte("[redacted: " + name + "]")
		for _, form := range secretForms(value) {
			if form == "" || seen[form] {
				continue
			}
			seen[form] = true
			r.patterns = append(r.patterns, redactPattern{text: []byte(form), replacement: replacement})
		}
	}
	slices.SortStableFunc(r.patterns, func(a, b redactPattern) int { return cmp.Compare(len(b.text), len(a.text)) })
	for i, p := range r.patterns {
		r.byFirst[p.text[0]] = append(r.byFirst[p.text[0]], i)
	}
	return r
}

// secretForms are the texts that reveal a value.
func secretForms(value string) []string {
	v := []byte(value)
	forms := []string{value}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		forms = append(forms, enc.EncodeToString(v), enc.WithPadding(base64.NoPadding).EncodeToString(v))
		forms = append(forms, base64Cores(enc.WithPadding(base64.NoPadding), v)...)
	}
	forms = append(forms, url.QueryEscape(value), url.PathEscape(value))
	if quoted, err := json.Marshal(value); err == nil {
		forms = append(forms, string(quoted[1:len(quoted)-1]))
	}
	return forms
}

// base64Cores are, for a value that starts 0, 1 or 2 bytes into a base64
// group of a longer text, the characters only the value's bytes decide:
// whatever surrounds the value, they appear in the encoding.
func base64Cores(enc *base64.Encoding, v []byte) []string {
	var cores []string
	for shift := 0; shift <= 2; shift++ {
		padded := append(make([]byte, shift), v...)
		text := enc.EncodeToString(padded)
		// The first group's characters that hold bits of the shift's bytes
		// (8*shift bits: 6 bits a character) are not the value's.
		first := (8*shift + 5) / 6
		// The last characters hold bits of what follows the value unless
		// the value ends on a group boundary.
		whole := len(padded) / 3 * 4
		last := whole
		if rest := len(padded) % 3; rest > 0 {
			last = whole + (8*rest)/6
		}
		if last-first >= minBase64Core {
			cores = append(cores, text[first:last])
		}
	}
	return cores
}

// Empty reports whether there is nothing to redact.
func (r *Redactor) Empty() bool { return r == nil || len(r.patterns) == 0 }

// String redacts s whole.
func (r *Redactor) String(s string) string {
	if r.Empty() {
		return s
	}
	out, _ := r.redact([]byte(s), true)
	return string(out)
}

// Counts returns the replacements made so far: in all, and by secret name.
func (r *Redactor) Counts() (int, map[string]int) {
	if r == nil {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for _, n := range r.counts {
		total += n
	}
	return total, maps.Clone(r.counts)
}

// redact replaces every pattern in b. Unless final, it stops at the first
// position where a pattern may begin but b ends too soon to tell, and
// returns the rest as held.
func (r *Redactor) redact(b []byte, final bool) (out, held []byte) {
	out = make([]byte, 0, len(b))
	counted := map[string]int{}
	i := 0
scan:
	for i < len(b) {
		for _, pi := range r.byFirst[b[i]] {
			p := r.patterns[pi]
			switch {
			case bytes.HasPrefix(b[i:], p.text):
				out = append(out, p.replacement...)
				counted[nameOf(p.replacement)]++
				i += len(p.text)
				continue scan
			case !final && len(b)-i < len(p.text) && bytes.HasPrefix(p.text, b[i:]):
				// A longer pattern may still complete here: wait for it
				// rather than take a shorter one or pass the bytes on.
				held = b[i:]
				break scan
			}
		}
		out = append(out, b[i])
		i++
	}
	if len(counted) > 0 {
		r.mu.Lock()
		for name, n := range counted {
			r.counts[name] += n
		}
		r.mu.Unlock()
	}
	return out, held
}

func nameOf(replacement []byte) string {
	return strings.TrimSuffix(strings.TrimPrefix(string(replacement), "[redacted: "), "]")
}

// Writer returns a writer that redacts what passes to w. Close it (it
// does not close w) to pass on what it holds back at the end.
func (r *Redactor) Writer(w io.Writer) *RedactingWriter {
	return &RedactingWriter{r: r, w: w}
}

// RedactingWriter redacts a stream; see Redactor.
type RedactingWriter struct {
	r    *Redactor
	w    io.Writer
	mu   sync.Mutex
	held []byte
}

// Write redacts p, with whatever was held back before it, and passes the
// result on. It reports len(p) written: what it holds back is its own.
func (rw *RedactingWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.r.Empty() {
		return rw.w.Write(p)
	}
	buf := append(rw.held, p...)
	out, held := rw.r.redact(buf, false)
	rw.held = append([]byte(nil), held...)
	if len(out) > 0 {
		if _, err := rw.w.Write(out); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Close passes on what was held back, redacted as the stream's end.
func (rw *RedactingWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.held) == 0 {
		return nil
	}
	out, _ := rw.r.redact(rw.held, true)
	rw.held = nil
	_, err := rw.w.Write(out)
	return err
}

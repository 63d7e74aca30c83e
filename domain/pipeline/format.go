package pipeline

import (
	"encoding/json"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// String renders the pipeline in canonical form: text that parses back to
// the same stages and redirects (options as --name=value, strings quoted
// only where needed).
func (pl Pipeline) String() string {
	parts := make([]string, len(pl.Stages))
	for i, st := range pl.Stages {
		parts[i] = st.String()
	}
	out := strings.Join(parts, " | ")
	switch len(pl.Redirects) {
	case 0:
	case 1:
		out += " > " + pl.Redirects[0].String()
	default:
		targets := make([]string, len(pl.Redirects))
		for i, r := range pl.Redirects {
			targets[i] = r.String()
		}
		out += " *> " + strings.Join(targets, " ")
	}
	return out
}

// String renders the stage: its command, then its options and arguments in
// the order they were written.
func (s Stage) String() string {
	type item struct {
		column int
		text   string
	}
	items := make([]item, 0, len(s.Args)+len(s.OptionList))
	for _, o := range s.OptionList {
		items = append(items, item{o.Column, o.String()})
	}
	for _, a := range s.Args {
		items = append(items, item{a.Column, a.String()})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].column < items[j].column })
	var b strings.Builder
	b.WriteString(s.Command)
	for _, it := range items {
		b.WriteByte(' ')
		b.WriteString(it.text)
	}
	return b.String()
}

// String renders the option as --name or --name=value, with the dashes it
// was written with.
func (o StageOption) String() string {
	flag := o.Flag
	if flag == "" {
		flag = "--" + o.Name
	}
	if o.Implicit {
		return flag
	}
	return flag + "=" + o.Value.String()
}

// String renders the value so that it parses back to the same kind and
// content.
func (v Value) String() string {
	switch v.Kind {
	case KindString:
		if bareSafe(v.Str) {
			return v.Str
		}
		if strings.Contains(v.Str, `"`) && !strings.ContainsAny(v.Str, `'\`) {
			return `'` + v.Str + `'` // JSON reads better without escapes
		}
		return `"` + escapeDouble(v.Str) + `"`
	case KindInt:
		return strconv.FormatInt(v.Int, 10)
	case KindFloat:
		if math.IsInf(v.Float, 0) || math.IsNaN(v.Float) {
			return `"` + strconv.FormatFloat(v.Float, 'g', -1, 64) + `"`
		}
		s := strconv.FormatFloat(v.Float, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindNull:
		return "null"
	case KindList, KindObject:
		data, _ := json.Marshal(v.Literal()) // Literal holds only JSON-encodable values
		return `'` + strings.ReplaceAll(string(data), `'`, `\'`) + `'`
	case KindVariable:
		return v.Var.String()
	case KindTemplate:
		var b strings.Builder
		b.WriteByte('"')
		for _, seg := range v.Template {
			if seg.Var != nil {
				b.WriteString("${" + seg.Var.pathText() + "}")
				continue
			}
			b.WriteString(escapeDouble(seg.Text))
		}
		b.WriteByte('"')
		return b.String()
	default:
		return `""`
	}
}

// String renders the destination as written, quoted if it holds spaces.
func (r Redirect) String() string {
	for _, c := range r.Target {
		if unicode.IsSpace(c) || strings.ContainsRune(`'"\|&>*$`, c) {
			return `"` + escapeDouble(r.Target) + `"`
		}
	}
	return r.Target
}

// String renders the reference as $root.field[0]["other key"].
func (r VarRef) String() string { return "$" + r.pathText() }

// pathText is the reference without its $, as written inside ${...}.
func (r VarRef) pathText() string {
	var b strings.Builder
	for i, step := range r.Path {
		switch {
		case step.IsIndex:
			b.WriteString("[" + strconv.Itoa(step.Index) + "]")
		case i == 0:
			b.WriteString(step.Key)
		case isFieldName(step.Key):
			b.WriteString("." + step.Key)
		default:
			b.WriteString(`["` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(step.Key) + `"]`)
		}
	}
	return b.String()
}

// isFieldName reports whether a key can be written as .key in a path.
func isFieldName(s string) bool {
	for i, r := range s {
		if !isFieldChar(r) && (r != '-' || i == 0) {
			return false
		}
	}
	return s != ""
}

// templateText is the template as a person reads it: text with ${path}.
func templateText(segs []Segment) string {
	var b strings.Builder
	for _, seg := range segs {
		if seg.Var != nil {
			b.WriteString("${" + seg.Var.pathText() + "}")
			continue
		}
		b.WriteString(seg.Text)
	}
	return b.String()
}

// bareSafe reports whether s can be written without quotes and still parse
// as the same string argument.
func bareSafe(s string) bool {
	if s == "" || s[0] == '-' || typedLiteral(s).Kind != KindString {
		return false
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) || strings.ContainsRune(`'"\|&>*$`, c) {
			return false
		}
	}
	return true
}

func escapeDouble(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(s)
}

var quoteBareWord = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:@/+-]*$`)

// QuoteWord writes s as one word whose value is the text s, for building
// command text from values (the CLI's and the API's administration
// commands): bare when it is a plain word that reads as text, else
// double-quoted with \, " and $ escaped, so no ${...} interpolates.
func QuoteWord(s string) string {
	if quoteBareWord.MatchString(s) && s != "true" && s != "false" {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`)
	return `"` + r.Replace(s) + `"`
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type command func(inv invocation, stdin io.Reader, stdout io.Writer) error

var commands = map[string]command{
	"echo":  echo,
	"date":  date,
	"wc":    wc,
	"sort":  sortLines,
	"sleep": sleep,
	"seq":   seq,
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// echo prints its arguments joined by spaces.
func echo(inv invocation, _ io.Reader, stdout io.Writer) error {
	_, err := fmt.Fprintln(stdout, strings.Join(inv.args, " "))
	return err
}

// date prints the time now in UTC, or in the Go layout given by --format.
func date(inv invocation, _ io.Reader, stdout io.Writer) error {
	layout := time.RFC3339
	if f, ok := inv.opt("format"); ok {
		layout = f
	}
	_, err := fmt.Fprintln(stdout, time.Now().UTC().Format(layout))
	return err
}

// wc counts the lines, words and characters of its input (the previous
// stage's output, or its arguments) and prints them as JSON, so a next stage
// can use $lines, $words and $chars.
func wc(inv invocation, stdin io.Reader, stdout io.Writer) error {
	lines, err := inputLines(inv, stdin)
	if err != nil {
		return err
	}
	counts := map[string]int{"lines": len(lines)}
	for _, l := range lines {
		counts["words"] += len(strings.Fields(l))
		counts["chars"] += utf8.RuneCountInString(l)
	}
	return printJSON(stdout, counts)
}

// sortLines prints its input lines sorted; --reverse reverses, --numeric
// compares numbers.
func sortLines(inv invocation, stdin io.Reader, stdout io.Writer) error {
	lines, err := inputLines(inv, stdin)
	if err != nil {
		return err
	}
	_, numeric := inv.opt("numeric")
	slices.SortStableFunc(lines, func(a, b string) int {
		if numeric {
			x, errX := strconv.ParseFloat(strings.TrimSpace(a), 64)
			y, errY := strconv.ParseFloat(strings.TrimSpace(b), 64)
			if errX == nil && errY == nil {
				switch {
				case x < y:
					return -1
				case x > y:
					return 1
				}
				return 0
			}
		}
		return strings.Compare(a, b)
	})
	if v, ok := inv.opt("reverse"); ok && v != "false" {
		slices.Reverse(lines)
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(stdout, l); err != nil {
			return err
		}
	}
	return nil
}

// sleep waits for its argument's number of seconds (fractions allowed).
func sleep(inv invocation, _ io.Reader, stdout io.Writer) error {
	if len(inv.args) != 1 {
		return fmt.Errorf("expected one argument, the seconds to sleep, got %d", len(inv.args))
	}
	seconds, err := strconv.ParseFloat(inv.args[0], 64)
	if err != nil || seconds < 0 || seconds > 3600 {
		return fmt.Errorf("%q is not a number of seconds between 0 and 3600", inv.args[0])
	}
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	_, err = fmt.Fprintf(stdout, "slept %gs\n", seconds)
	return err
}

// seq prints the numbers from 1 to N, or from M to N, one per line, as a JSON
// list of {"n": i}, so that a next stage runs once per number ($n).
func seq(inv invocation, _ io.Reader, stdout io.Writer) error {
	from, to := 1, 0
	var err error
	switch len(inv.args) {
	case 1:
		to, err = strconv.Atoi(inv.args[0])
	case 2:
		if from, err = strconv.Atoi(inv.args[0]); err == nil {
			to, err = strconv.Atoi(inv.args[1])
		}
	default:
		return fmt.Errorf("expected LAST or FIRST LAST, got %d arguments", len(inv.args))
	}
	if err != nil || to-from > 10000 {
		return fmt.Errorf("arguments must be integers at most 10000 apart")
	}
	items := []map[string]int{}
	for i := from; i <= to; i++ {
		items = append(items, map[string]int{"n": i})
	}
	return printJSON(stdout, items)
}

// inputLines is what a filter works on: its arguments when it has any,
// otherwise the previous stage's output read from stdin. Cog's plain-text
// output ([{"body": [lines]}]) gives its lines; any other JSON gives one
// line per list element; text that is not JSON gives its lines.
func inputLines(inv invocation, stdin io.Reader) ([]string, error) {
	if len(inv.args) > 0 {
		return inv.args, nil
	}
	data, err := io.ReadAll(io.LimitReader(stdin, 16<<20))
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		return lines, sc.Err()
	}
	return jsonLines(value), nil
}

func jsonLines(value any) []string {
	switch v := value.(type) {
	case []any:
		var lines []string
		for _, item := range v {
			lines = append(lines, jsonLines(item)...)
		}
		return lines
	case map[string]any:
		if body, ok := v["body"].([]any); ok {
			lines := make([]string, 0, len(body))
			for _, b := range body {
				lines = append(lines, fmt.Sprint(b))
			}
			return lines
		}
		b, _ := json.Marshal(v)
		return []string{string(b)}
	case string:
		return strings.Split(v, "\n")
	default:
		b, _ := json.Marshal(v)
		return []string{string(b)}
	}
}

// printJSON writes the Cog protocol's JSON marker line and the value.
func printJSON(stdout io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "JSON\n%s\n", b)
	return err
}

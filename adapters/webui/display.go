package webui

import (
	"fmt"
	"html"
	"html/template"
	"time"
)

// relativeTime says how long ago t was, as people say it ("3 min ago"),
// or how long until it ("in 2 h").
func relativeTime(t, now time.Time) string {
	d := now.Sub(t)
	if d > -10*time.Second && d < 10*time.Second {
		return "just now"
	}
	future := d < 0
	if future {
		d = -d
	}
	var amount string
	switch {
	case d < time.Minute:
		amount = fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		amount = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		amount = fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		amount = fmt.Sprintf("%d d", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + amount
	}
	return amount + " ago"
}

// absoluteTime is a time as every page shows it in full: UTC, to the
// millisecond.
func absoluteTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// timeElement is a <time> saying how long ago t was, with the absolute UTC
// time on hover and in its datetime attribute (app.js keeps the relative
// text current while the page stays open).
func timeElement(t, now time.Time) template.HTML {
	if t.IsZero() {
		return ""
	}
	abs := absoluteTime(t)
	return template.HTML(`<time class="rel" datetime="` + t.UTC().Format(time.RFC3339Nano) + `" title="` + abs + `">` +
		html.EscapeString(relativeTime(t, now)) + `</time>`)
}

// statusBadge is a status as a coloured badge; a reason (why it failed, was
// denied or rejected) shows on hover and is read out by screen readers.
func statusBadge(status, reason string) template.HTML {
	s := html.EscapeString(status)
	if reason == "" {
		return template.HTML(`<span class="badge status-` + s + `">` + s + `</span>`)
	}
	r := html.EscapeString(reason)
	return template.HTML(`<span class="badge status-` + s + `" title="` + r + `">` + s +
		`<span class="visually-hidden">: ` + r + `</span></span>`)
}

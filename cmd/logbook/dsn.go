package main

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// unparsedURL stands in for a database URL that net/url cannot parse:
// where its password starts and ends is then unknown, so none of it is
// ever printed.
const unparsedURL = "(a URL that does not parse)"

// secretQueryKey says whether a connection parameter carries a secret
// (password, sslpassword, passfile, a token), to be hidden like the
// password in the user info.
func secretQueryKey(key string) bool {
	key = strings.ToLower(key)
	return strings.Contains(key, "pass") || strings.Contains(key, "secret") || strings.Contains(key, "token") || key == "sslkey"
}

// redactURL hides every secret of a database URL before it is logged or
// printed: the password in the user info (net/url's Redacted, which finds
// the last '@', so a password holding '@' is hidden whole) and secret query
// parameters. A URL that does not parse is never shown.
func redactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw // a file path: sqlite files carry no credentials
	}
	u, err := url.Parse(raw)
	if err != nil {
		return unparsedURL
	}
	if q := u.Query(); len(q) > 0 {
		changed := false
		for key, values := range q {
			if secretQueryKey(key) {
				for i := range values {
					values[i] = "xxxxx"
				}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// urlSecrets lists the strings of raw that must never be printed: the
// whole URL as typed, its password and secret parameters, raw and decoded.
func urlSecrets(raw string) []string {
	secrets := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p, url.PathEscape(p), url.QueryEscape(p))
		}
		for key, values := range u.Query() {
			if secretQueryKey(key) {
				for _, v := range values {
					secrets = append(secrets, v, url.QueryEscape(v))
				}
			}
		}
	} else if _, rest, ok := strings.Cut(raw, "://"); ok {
		// Unparsed: everything between the scheme and the last '@' may be
		// credentials.
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			secrets = append(secrets, rest[:at])
		}
	}
	secrets = slices.DeleteFunc(secrets, func(s string) bool { return len(s) < 3 })
	// Longest first, so the whole URL is replaced before a part of it.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	return secrets
}

// redactedError is an error whose text has a database URL's secrets
// replaced. errors.Is still sees the original; there is no Unwrap, so
// nothing can reach the original's text.
type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string        { return e.text }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// redactErr hides raw's secrets in err's text: drivers and net/url quote
// the URL they were given in their errors.
func redactErr(err error, raw string) error {
	if err == nil || raw == "" {
		return err
	}
	text := err.Error()
	for _, s := range urlSecrets(raw) {
		replacement := "xxxxx"
		if s == raw {
			replacement = redactURL(raw)
		}
		text = strings.ReplaceAll(text, s, replacement)
	}
	return &redactedError{err: err, text: text}
}

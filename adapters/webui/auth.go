package webui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// sessionCookie names the cookie that carries the session id. The token
// itself stays on the server (sealed under a key only the cookie yields,
// in SQLSessions): the cookie is worthless once the session ends, and the
// token is checked again on every request.
const sessionCookie = "logbook_session"

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// currentViewer resolves the session cookie to the person, checking the
// session's token as the API checks a bearer token. An error is a session
// store that could not be read.
func (ui *UI) currentViewer(r *http.Request) (*viewer, bool, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, false, nil
	}
	s, ok, err := ui.sessions.get(r.Context(), c.Value)
	if err != nil || !ok {
		return nil, false, err
	}
	user, ok := ui.cfg.Users.UserForToken(s.token)
	if !ok {
		// The token was revoked or the user disabled.
		return nil, false, ui.sessions.end(r.Context(), s.id)
	}
	held := ui.cfg.Users.PermissionsOf(user.ID)
	return &viewer{User: user, Session: s, Admin: slices.Contains(held, permAdmin), held: held}, true, nil
}

// authed lets a request through only with a live session; a page asked for
// without one goes to the login form (and back after it), while a script's
// request gets a bare 401. Every POST must also pass the CSRF checks.
func (ui *UI) authed(next func(http.ResponseWriter, *http.Request, *viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok, err := ui.currentViewer(r)
		if err != nil {
			ui.unavailable(w, r, nil, "reading the session", err)
			return
		}
		if !ok {
			if wantsData(r) || r.Method != http.MethodGet {
				http.Error(w, "log in first: no valid session", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if reason := crossSite(r); reason != "" {
				ui.fail(w, r, v, http.StatusForbidden, reason)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					ui.fail(w, r, v, http.StatusRequestEntityTooLarge, "The form is over the 64 KiB limit; a command may be at most 16 KiB.")
					return
				}
				ui.fail(w, r, v, http.StatusBadRequest, "The form could not be read: "+err.Error())
				return
			}
			sent := r.Header.Get("X-CSRF-Token")
			if sent == "" {
				sent = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(sent), []byte(v.Session.csrf)) != 1 {
				ui.fail(w, r, v, http.StatusForbidden, "The form's security token is missing or stale. Reload the page and try again.")
				return
			}
		}
		next(w, r, v)
	}
}

// maxFormBytes bounds a form body; a command's text is bounded by the
// dispatcher (16 KiB), which records and answers an oversized one.
const maxFormBytes = 64 << 10

// wantsData reports whether a script, not a person, asked.
func wantsData(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/event-stream") || strings.Contains(accept, "application/json")
}

// crossSite refuses a POST another site caused: the browser says so in
// Sec-Fetch-Site or Origin. SameSite=Strict already keeps the cookie off
// such requests; this and the CSRF token are the belt and braces.
func crossSite(r *http.Request) string {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return "This form was sent from another site; Logbook accepts its forms only from its own pages."
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return "This form was sent from " + origin + "; Logbook accepts its forms only from its own pages."
		}
	}
	return ""
}

type loginData struct {
	Next  string
	Error string
}

func (ui *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := ui.currentViewer(r); ok { // a session that cannot be read asks for a login
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	ui.render(w, r, http.StatusOK, "login", page{Title: "Log in", Data: loginData{Next: r.URL.Query().Get("next")}})
}

func (ui *UI) login(w http.ResponseWriter, r *http.Request) {
	if reason := crossSite(r); reason != "" {
		ui.fail(w, r, nil, http.StatusForbidden, reason)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := r.PostFormValue("next")
	client, now := clientOf(r.RemoteAddr), ui.cfg.Now()
	// A client that failed too often is refused before its token is
	// looked at, so guesses go no faster than the throttle lets them.
	if wait := ui.logins.retryAfter(client, now); wait > 0 {
		ui.refusals.note(client, true)
		seconds := retryAfterSeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(seconds))
		msg := fmt.Sprintf("Too many failed logins from your address. Try again in %d seconds.", seconds)
		ui.render(w, r, http.StatusTooManyRequests, "login", page{Title: "Log in", Data: loginData{Next: next, Error: msg}})
		return
	}
	user, ok := ui.cfg.Users.UserForToken(token)
	if token == "" || !ok {
		msg := "That token is not valid. Use the admin token printed at the first start, or one from !user token."
		if token == "" {
			msg = "Enter an API token to log in."
		} else {
			ui.logins.failed(client, now)
			ui.refusals.note(client, false)
		}
		ui.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in", Data: loginData{Next: next, Error: msg}})
		return
	}
	// The session is stored before the login is recorded, so the audit
	// log never shows a login that did not happen. A login is part of the
	// audit log; one that cannot be recorded does not happen: its session
	// is deleted, and its cookie was never handed out anyway.
	s, err := ui.sessions.start(r.Context(), user.ID, token)
	if err != nil {
		ui.cfg.Logger.Error().Err(err).Str("user", user.Username).Msg("storing a web session")
		ui.render(w, r, http.StatusServiceUnavailable, "login", page{Title: "Log in", Data: loginData{Next: next,
			Error: "The session could not be stored, so the login did not happen. Try again in a moment."}})
		return
	}
	if err := ui.record(r.Context(), user.Username, access.SessionStarted{User: user.ID, Username: user.Username, Client: client}); err != nil {
		ui.cfg.Logger.Error().Err(err).Str("user", user.Username).Msg("recording a web login")
		if err := ui.sessions.end(r.Context(), s.id); err != nil {
			ui.cfg.Logger.Error().Err(err).Str("user", user.Username).Msg("deleting the session of a login not recorded")
		}
		ui.render(w, r, http.StatusServiceUnavailable, "login", page{Title: "Log in", Data: loginData{Next: next,
			Error: "The login could not be recorded in the log, so it was refused. Try again in a moment."}})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	ui.cfg.Logger.Info().Str("user", user.Username).Msg("web login")
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

func (ui *UI) logout(w http.ResponseWriter, r *http.Request, v *viewer) {
	if err := ui.sessions.end(r.Context(), v.Session.id); err != nil {
		// The cookie is still valid: say so rather than pretend.
		ui.unavailable(w, r, v, "ending the session", err)
		return
	}
	// The session has ended; a logout that cannot be recorded is logged.
	if err := ui.record(r.Context(), v.User.Username, access.SessionEnded{User: v.User.ID, Username: v.User.Username}); err != nil {
		ui.cfg.Logger.Error().Err(err).Str("user", v.User.Username).Msg("recording a web logout")
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: next is used only
// when it is a path on this origin, else the dashboard. Browsers forgive a
// lot in a Location (they drop tabs and newlines, read a backslash as a
// slash, trim leading spaces, decode some escapes in some places), so
// rather than list what they forgive, only what a path this site links to
// looks like is accepted: printable ASCII with no backslash, starting with
// one "/", with no scheme, host or user, and the same holds once decoded.
// The pages this site redirects to login from pass their escaped
// RequestURI, which always fits.
func safeNext(next string) string {
	const fallback = "/" // the dashboard, the home page
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return fallback
	}
	for _, s := range []string{next, u.Path} {
		if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsFunc(s, notInALocalPath) {
			return fallback
		}
	}
	return next
}

// notInALocalPath is a character a path this site links to never holds
// unescaped: a control character, a space, a backslash or anything
// beyond ASCII (a lookalike of "/" or ".").
func notInALocalPath(r rune) bool {
	return r <= ' ' || r == '\\' || r >= 0x7f
}

// record appends an access event (a login, a logout) to its stream, as
// the user.
func (ui *UI) record(ctx context.Context, actor string, e access.Event) error {
	_, err := ui.cfg.Events.Append(ctx, e.Stream(), eventstore.Any, domain.MustEncode(e, domain.Metadata{Actor: actor}))
	return err
}

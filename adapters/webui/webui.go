// Package webui serves Logbook's web pages: a console that issues commands
// as provider "web" and streams their output, the history with the API's
// filters, requests and runs with their event chains, transcript playback,
// the permission pages and the audit page. Pages are rendered on the server
// with html/template; the CSS and the two small scripts (console streaming,
// transcript playback) are embedded, so there is no build step and nothing
// is fetched from elsewhere. Like the API it reads the views and the store,
// and writes only by handing a request to the dispatcher.
package webui

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the pages read and where requests go.
type Config struct {
	// Users checks the login token, as the API does (hash lookup against
	// the issued tokens), on every request: a revoked token or a disabled
	// user ends the session at once.
	Users httpapi.Users
	// Requests records the console's requests (dispatcher.Receive) and
	// hands back their replies.
	Requests httpapi.Requests
	// History, Transcripts and Events serve the history, request, run and
	// transcript pages; Views, when set, lets a page wait for a lagging view.
	History     httpapi.History
	Transcripts httpapi.Transcripts
	Events      eventstore.Store
	Views       httpapi.ViewProgress
	// Live follows the console's requests as they run: one follower of
	// the log for every open stream (an eventstore.Hub).
	Live httpapi.LiveStreams
	// Access answers "what may this user run" with the dispatcher's own
	// decision (dispatch.Decide on the live facts).
	Access dispatch.Facts
	// Permissions reads the permission view (users, groups, roles, grants).
	Permissions httpapi.PermissionReader
	// Audit reads the audit view for the audit log's stream.
	Audit AuditLog
	// Dashboard reads the history view's roll-ups for the home page; nil
	// takes History when it serves them (projections.HistoryReader does).
	Dashboard Dashboard
	// Approvals reads the approvals view for the approvals page (nil: the
	// page says the server does not serve it).
	Approvals httpapi.ApprovalsReader
	// Search reads the search view for the search page (nil: the page
	// says the server does not serve it).
	Search httpapi.Searcher
	// Executors lists the live executors on a NATS bus (nil: the page says
	// commands run in-process).
	Executors httpapi.ExecutorLister
	Logger    zerolog.Logger
	// Heartbeat is how often a quiet console stream sends a comment line,
	// so that proxies keep it open (default 15s).
	Heartbeat time.Duration
	// Sessions keeps the web sessions (nil: a MemorySessions, which a
	// restart empties and other servers do not see). serve passes
	// SQLSessions on the event store's database.
	Sessions SessionStore
	// SessionIdle ends a session unused for that long (default 12h);
	// SessionMax ends any session that old (default 7 days).
	SessionIdle time.Duration
	SessionMax  time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Validate says which required part is missing.
func (c Config) Validate() error {
	var errs []error
	for name, missing := range map[string]bool{
		"Users": c.Users == nil, "Requests": c.Requests == nil, "History": c.History == nil,
		"Transcripts": c.Transcripts == nil, "Events": c.Events == nil, "Live": c.Live == nil, "Access": c.Access == nil,
		"Permissions": c.Permissions == nil, "Audit": c.Audit == nil,
	} {
		if missing {
			errs = append(errs, errors.New("webui: Config."+name+" is required"))
		}
	}
	return errors.Join(errs...)
}

// UI is the web UI's handler.
type UI struct {
	cfg      Config
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	static   http.Handler
	// verifying allows one chain verification at a time: it reads the
	// whole log, so concurrent clicks must not multiply the work.
	verifying sync.Mutex
	// streams ends the open event streams when the server shuts down,
	// which would otherwise wait for each followed request to end.
	streams    context.Context
	endStreams context.CancelFunc
	heartbeat  time.Duration
	// logins throttles failed logins per client; refusals keeps the log
	// of refused logins to a line a minute.
	logins   *loginThrottle
	refusals *refusalLog
}

// New returns the web UI, or an error naming what Config lacks.
func New(cfg Config) (*UI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 12 * time.Hour
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sessions == nil {
		cfg.Sessions = NewMemorySessions()
	}
	if cfg.Dashboard == nil {
		d, ok := cfg.History.(Dashboard)
		if !ok {
			return nil, errors.New("webui: Config.Dashboard is required: the History reader does not serve the dashboard's roll-ups")
		}
		cfg.Dashboard = d
	}
	pages, err := parsePages(cfg.Now)
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	ui := &UI{cfg: cfg, sessions: newSessions(cfg.Sessions, cfg.Now, cfg.SessionIdle, cfg.SessionMax), pages: pages, mux: http.NewServeMux(),
		logins: newLoginThrottle(), refusals: newRefusalLog(cfg.Logger, refusalSummaryEvery)}
	ui.streams, ui.endStreams = context.WithCancel(context.Background())
	ui.heartbeat = cfg.Heartbeat
	if ui.heartbeat <= 0 {
		ui.heartbeat = 15 * time.Second
	}
	ui.static = http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	ui.routes()
	return ui, nil
}

func (ui *UI) routes() {
	m := ui.mux
	m.HandleFunc("GET /static/", ui.serveStatic)
	m.HandleFunc("GET /login", ui.loginPage)
	m.HandleFunc("POST /login", ui.login)
	m.HandleFunc("POST /logout", ui.authed(ui.logout))
	m.HandleFunc("GET /favicon.ico", ui.favicon)
	m.HandleFunc("GET /{$}", ui.authed(ui.dashboardPage))
	m.HandleFunc("GET /console", ui.authed(ui.consolePage))
	m.HandleFunc("POST /console", ui.authed(ui.consoleSubmit))
	m.HandleFunc("GET /console/requests/{id}/events", ui.authed(ui.consoleEvents))
	m.HandleFunc("GET /history", ui.authed(ui.historyPage))
	m.HandleFunc("GET /history.csv", ui.authed(ui.historyExport))
	m.HandleFunc("GET /history.json", ui.authed(ui.historyExport))
	m.HandleFunc("GET /history/events", ui.authed(ui.historyEvents))
	m.HandleFunc("GET /requests/{id}", ui.authed(ui.requestPage))
	m.HandleFunc("GET /runs/{id}", ui.authed(ui.runPage))
	m.HandleFunc("GET /runs/{id}/transcript", ui.authed(ui.transcriptPage))
	m.HandleFunc("GET /runs/{id}/chunks", ui.authed(ui.transcriptChunks))
	m.HandleFunc("GET /runs/{id}/raw", ui.authed(ui.transcriptRaw))
	m.HandleFunc("GET /search", ui.authed(ui.searchPage))
	m.HandleFunc("GET /users", ui.authed(ui.usersPage))
	m.HandleFunc("GET /users/{name}", ui.authed(ui.userPage))
	m.HandleFunc("GET /groups", ui.authed(ui.groupsPage))
	m.HandleFunc("GET /roles", ui.authed(ui.rolesPage))
	m.HandleFunc("GET /approvals", ui.authed(ui.approvalsPage))
	m.HandleFunc("POST /approvals/{id}/approve", ui.authed(ui.approve))
	m.HandleFunc("POST /approvals/{id}/reject", ui.authed(ui.reject))
	m.HandleFunc("GET /audit", ui.authed(ui.auditPage))
	m.HandleFunc("GET /executors", ui.authed(ui.executorsPage))
	m.HandleFunc("POST /audit/verify", ui.authed(ui.auditVerify))
	m.HandleFunc("/", ui.authed(func(w http.ResponseWriter, r *http.Request, v *viewer) {
		ui.fail(w, r, v, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	}))
}

// Shutdown ends the open event streams (register it with
// http.Server.RegisterOnShutdown); pages keep being served until the
// server stops.
func (ui *UI) Shutdown() { ui.endStreams() }

// ServeHTTP implements http.Handler: every answer carries headers that
// keep the pages from being framed, sniffed or given outside scripts.
func (ui *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	ui.mux.ServeHTTP(w, r)
}

// favicon answers the browsers that ask for /favicon.ico whatever the
// page's <link rel="icon"> says, with the same icon.
func (ui *UI) favicon(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/static/favicon.svg"
	ui.serveStatic(w, r2)
}

func (ui *UI) serveStatic(w http.ResponseWriter, r *http.Request) {
	// Assets change only with the binary; an hour of caching is plenty.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	ui.static.ServeHTTP(w, r)
}

// Starting serves the UI once current returns it, and a plain 503 page
// until then, while the server connects to its database.
func Starting(current func() http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := current(); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(startingPage))
	})
}

const startingPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Logbook is starting</title></head>
<body><h1>Logbook is starting</h1><p>The database is not connected yet. Reload this page in a moment.</p></body></html>
`

// viewer is the logged-in person a page is rendered for.
type viewer struct {
	User    access.UserInfo
	Session *session
	Admin   bool
	held    []string
}

// may reports whether the viewer holds perm, or logbook:admin, which
// stands for every logbook:* permission (as the API reads it).
func (v *viewer) may(perm string) bool {
	return v.Admin || slices.Contains(v.held, perm)
}

// Shows reports whether the navigation links a section: the permission
// pages only for those who may open them (their own user page is behind
// their name).
func (v *viewer) Shows(section string) bool {
	switch section {
	case "users":
		return v.may(permManageUsers)
	case "groups":
		return v.may(permManageGroups)
	case "roles":
		return v.may(permManageRoles)
	case "executors":
		return v.may(permManageBundles)
	}
	return true
}

// historyReader is the viewer as the history rule sees them: their own
// requests, runs and transcripts, or everyone's with logbook:read_history.
func (v *viewer) historyReader() access.HistoryReader {
	return access.HistoryReader{Username: v.User.Username, Permissions: v.held}
}

// page is what every template gets: the viewer and the current section,
// for the layout, and the page's own data.
type page struct {
	Title   string
	Section string
	Viewer  *viewer
	CSRF    string
	Data    any
}

func parsePages(now func() time.Time) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"short": func(s string, n int) string {
			if len(s) <= n {
				return s
			}
			return s[:n]
		},
		"join": strings.Join,
		// ordinal shows a 0-based stage as people count it, from 1, as
		// the dispatcher's reasons and the user page do.
		"ordinal":    func(n int64) int64 { return n + 1 },
		"answerForm": func(id, csrf string) map[string]string { return map[string]string{"ID": id, "CSRF": csrf} },
		"time": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return absoluteTime(t)
		},
		"when": func(t any) template.HTML {
			switch t := t.(type) {
			case time.Time:
				return timeElement(t, now())
			case *time.Time:
				if t != nil {
					return timeElement(*t, now())
				}
			}
			return ""
		},
		"badge": statusBadge,
		"human": humanDuration,
		"f1":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", name)
		if err != nil {
			return nil, err
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page with status.
func (ui *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := ui.pages[name]
	if !ok {
		panic("webui: no template " + name) // the set is fixed at build time
	}
	if p.Viewer != nil && p.Viewer.Session != nil {
		p.CSRF = p.Viewer.Session.csrf
	}
	var buf strings.Builder
	if err := t.Execute(&buf, p); err != nil {
		ui.cfg.Logger.Error().Err(err).Str("page", name).Str("path", r.URL.Path).Msg("rendering a web page")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// errorData is the error page's content.
type errorData struct {
	Status  int
	Heading string
	Message string
}

// fail renders the error page: what went wrong, in a sentence. A script
// gets the sentence alone, as plain text, never a page to show as a
// message.
func (ui *UI) fail(w http.ResponseWriter, r *http.Request, v *viewer, status int, message string) {
	if wantsData(r) {
		http.Error(w, message, status)
		return
	}
	ui.render(w, r, status, "error", page{Title: http.StatusText(status), Viewer: v,
		Data: errorData{Status: status, Heading: http.StatusText(status), Message: message}})
}

// unavailable renders a 503 for a read that failed, and logs the cause.
func (ui *UI) unavailable(w http.ResponseWriter, r *http.Request, v *viewer, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	ui.cfg.Logger.Error().Err(err).Str("path", r.URL.Path).Msg(what)
	ui.fail(w, r, v, http.StatusServiceUnavailable, what+" failed: "+err.Error()+". Try again in a moment.")
}

// viewCatchUp bounds how long a page waits for a lagging view before it
// shows what the view has.
const viewCatchUp = 3 * time.Second

// catchUp waits, briefly, until view has applied everything the store held
// when the page was asked for, so what the person just did is on it.
func (ui *UI) catchUp(ctx context.Context, view string) error {
	if ui.cfg.Views == nil {
		return nil
	}
	head, _, err := ui.cfg.Events.Head(ctx)
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, viewCatchUp)
	defer cancel()
	if err := ui.cfg.Views.WaitFor(wait, view, head); err != nil && wait.Err() == nil {
		return err
	}
	return ctx.Err()
}

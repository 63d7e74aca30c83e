package webui

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/projections"
)

// AuditLog reads the audit view (projections.AuditReader).
type AuditLog interface {
	Events(ctx context.Context, f projections.AuditFilter) (projections.AuditPage, error)
}

type auditData struct {
	Lookup      string
	LookupError string
	// Last is the latest recorded verification of the chain, nil when
	// the log was never verified; LastAt and LastBy say when and by whom.
	Last   *eventstore.ChainVerified
	LastAt time.Time
	LastBy string
	// Compare is the comparison with a head saved earlier, when asked.
	Compare *headComparison
	Error   string
	// The stream of administrative events, filtered.
	Form       map[string]string
	Categories []projections.AuditCategory
	Events     []projections.AuditRow
	Next       string
	Errors     []string
	// NoStream: the viewer may not read the stream (it needs
	// logbook:read_history).
	NoStream bool
}

// headComparison compares a position and hash kept from an earlier
// verification with the log as it is now.
type headComparison struct {
	Position int64
	Hash     string
	// Stored is the hash the log holds at Position now ("" when the log
	// has no such position any more).
	Stored string
	Head   int64
	Match  bool
	Reason string
}

// auditParams are the audit page's query parameters.
var auditParams = []string{"request", "type", "actor", "since", "until", "cursor", "position", "hash"}

// auditPage shows the audit log: the last verification of the chain (and
// a button to verify it again), a comparison of the log with a head kept
// from before, the stream of administrative events filtered by type,
// actor and time, and a request lookup (its page lists its chain).
func (ui *UI) auditPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	p := page{Title: "Audit", Section: "audit", Viewer: v}
	q := r.URL.Query()
	data := auditData{Form: map[string]string{}, Categories: projections.AuditCategories}
	for _, name := range auditParams {
		data.Form[name] = strings.TrimSpace(q.Get(name))
	}
	if lookup := data.Form["request"]; lookup != "" {
		if _, err := uuid.Parse(lookup); err != nil {
			data.Lookup, data.LookupError = lookup, "request: "+quote(lookup)+" is not a request id; request ids look like 7c9e6679-7425-40de-944b-e07fc1f90ae7"
			p.Data = data
			ui.render(w, r, http.StatusBadRequest, "audit", p)
			return
		}
		http.Redirect(w, r, "/requests/"+lookup, http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	filter, errs := ui.auditFilter(q)
	data.Errors = errs
	// The administrative stream is everyone's doing: it needs
	// logbook:read_history, as everyone's history does.
	data.NoStream = !v.historyReader().ReadsEveryone()
	status := http.StatusOK
	if len(data.Errors) > 0 {
		status = http.StatusBadRequest
		p.Data = data
		ui.render(w, r, status, "audit", p)
		return
	}
	if err := ui.catchUp(ctx, "audit"); err != nil {
		ui.unavailable(w, r, v, "reading the audit view", err)
		return
	}
	if err := ui.lastVerification(ctx, &data); err != nil {
		ui.unavailable(w, r, v, "reading the last verification", err)
		return
	}
	if data.Form["position"] != "" || data.Form["hash"] != "" {
		cmp, err := ui.compareHead(ctx, data.Form["position"], data.Form["hash"])
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) {
				ui.unavailable(w, r, v, "reading the event store", err)
				return
			}
			data.Errors = []string{"The head to compare, " + pe.Error() + "."}
			status = http.StatusBadRequest
		}
		data.Compare = cmp
	}
	if data.NoStream {
		p.Data = data
		ui.render(w, r, status, "audit", p)
		return
	}
	page, err := ui.cfg.Audit.Events(ctx, filter)
	if errors.Is(err, projections.ErrBadCursor) {
		data.Errors = append(data.Errors, "The filter cursor: it is not a page this site linked to.")
		p.Data = data
		ui.render(w, r, http.StatusBadRequest, "audit", p)
		return
	}
	if err != nil {
		ui.unavailable(w, r, v, "reading the audit log", err)
		return
	}
	data.Events = page.Events
	if page.Next != "" {
		next := url.Values{}
		for _, name := range []string{"type", "actor", "since", "until"} {
			if data.Form[name] != "" {
				next.Set(name, data.Form[name])
			}
		}
		next.Set("cursor", page.Next)
		data.Next = "/audit?" + next.Encode() + "#audit-log"
	}
	p.Data = data
	ui.render(w, r, status, "audit", p)
}

// auditFilter reads the stream's filters, naming every bad one.
func (ui *UI) auditFilter(q url.Values) (projections.AuditFilter, []string) {
	var errs []string
	for name, values := range q {
		if !slices.Contains(auditParams, name) {
			errs = append(errs, fmt.Sprintf("The filter %s: is not a filter here; the filters are %s.", name, strings.Join(auditParams, ", ")))
		} else if len(values) > 1 {
			errs = append(errs, fmt.Sprintf("The filter %s: is given %d times; give it once.", name, len(values)))
		}
	}
	slices.Sort(errs)
	f := projections.AuditFilter{Actor: strings.TrimSpace(q.Get("actor")), Cursor: q.Get("cursor"), Limit: 50}
	if kind := strings.TrimSpace(q.Get("type")); kind != "" {
		i := slices.IndexFunc(projections.AuditCategories, func(c projections.AuditCategory) bool { return c.Name == kind })
		switch {
		case i >= 0:
			f.Types = projections.AuditCategories[i].Types
		case slices.Contains(projections.NewAudit().Types(), kind):
			f.Types = []string{kind}
		default:
			names := make([]string, len(projections.AuditCategories))
			for i, c := range projections.AuditCategories {
				names[i] = c.Name
			}
			errs = append(errs, fmt.Sprintf("The filter type: %q is neither a kind of event (%s) nor an administrative event type such as TokenIssued.", kind, strings.Join(names, ", ")))
		}
	}
	now := ui.cfg.Now()
	var err error
	if f.From, err = parseWhen("since", strings.TrimSpace(q.Get("since")), now); err != nil {
		errs = append(errs, "The filter "+err.Error()+".")
	}
	if f.To, err = parseWhen("until", strings.TrimSpace(q.Get("until")), now); err != nil {
		errs = append(errs, "The filter "+err.Error()+".")
	}
	return f, errs
}

// lastVerification fills in the latest recorded ChainVerified.
func (ui *UI) lastVerification(ctx context.Context, data *auditData) error {
	page, err := ui.cfg.Audit.Events(ctx, projections.AuditFilter{Types: []string{(eventstore.ChainVerified{}).EventType()}, Limit: 1})
	if err != nil || len(page.Events) == 0 {
		return err
	}
	row := page.Events[0]
	events, err := ui.cfg.Events.ReadAll(ctx, row.Position, 1)
	if err != nil || len(events) == 0 || events[0].Position != row.Position {
		return err
	}
	p, err := domain.Decode(events[0])
	if err != nil {
		return err
	}
	if verified, ok := p.(eventstore.ChainVerified); ok {
		data.Last, data.LastAt, data.LastBy = &verified, events[0].RecordedAt, row.Actor
	}
	return nil
}

// compareHead checks a position and hash kept from an earlier
// verification against the log: the event at that position must still
// have that hash (so, with the chain intact, nothing up to it changed),
// and the log must still reach it (deleting the newest events is what
// the chain alone cannot show).
func (ui *UI) compareHead(ctx context.Context, rawPosition, rawHash string) (*headComparison, error) {
	position, err := strconv.ParseInt(rawPosition, 10, 64)
	if err != nil || position < 1 {
		return nil, badParam("position", "%q is not a position such as 1234 (audit verify prints it as the head)", rawPosition)
	}
	hash := strings.ToLower(strings.TrimSpace(rawHash))
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
		return nil, badParam("hash", "%q is not a SHA-256 hash in hex (64 characters, as audit verify prints it)", quoteShort(rawHash))
	}
	cmp := &headComparison{Position: position, Hash: hash}
	if cmp.Head, _, err = ui.cfg.Events.Head(ctx); err != nil {
		return nil, err
	}
	if cmp.Head < position {
		cmp.Reason = fmt.Sprintf("the log now ends at position %d, before %d: events were deleted from its end", cmp.Head, position)
		return cmp, nil
	}
	events, err := ui.cfg.Events.ReadAll(ctx, position, 1)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 || events[0].Position != position {
		cmp.Reason = fmt.Sprintf("the log has no event at position %d any more", position)
		return cmp, nil
	}
	cmp.Stored = hex.EncodeToString(events[0].Hash)
	if cmp.Stored != hash {
		cmp.Reason = "the event at that position has another hash now: the log up to it was rewritten"
		return cmp, nil
	}
	cmp.Match = true
	return cmp, nil
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}

func quoteShort(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// auditVerify walks the whole hash chain (eventstore.Verify), records what
// it found (ChainVerified, so the audit log says when the log was last
// verified and by whom) and goes back to the audit page, which shows it: a
// reload does not walk the chain again. It reads the whole log, so it is
// for admins, and one runs at a time.
func (ui *UI) auditVerify(w http.ResponseWriter, r *http.Request, v *viewer) {
	if !v.Admin {
		ui.fail(w, r, v, http.StatusForbidden, "Verifying the chain needs the logbook:admin permission.")
		return
	}
	if !ui.verifying.TryLock() {
		w.Header().Set("Retry-After", "5")
		ui.fail(w, r, v, http.StatusTooManyRequests, "A verification is already running. Try again when it has finished.")
		return
	}
	defer ui.verifying.Unlock()
	start := time.Now()
	report, err := eventstore.Verify(r.Context(), ui.cfg.Events, nil)
	if err != nil {
		ui.unavailable(w, r, v, "verifying the chain", err)
		return
	}
	took := time.Since(start)
	log := ui.cfg.Logger.Info()
	if !report.OK {
		log = ui.cfg.Logger.Error().Int64("first_bad_position", report.FirstBad).Str("problem", report.Problem)
	}
	log.Str("user", v.User.Username).Int64("checked", report.Checked).Int64("head", report.Head).Dur("took", took).Msg("chain verified from the web UI")
	verified := eventstore.ChainVerified{VerifyReport: report, DurationMS: took.Milliseconds()}
	if _, err := ui.cfg.Events.Append(r.Context(), eventstore.VerificationStream, eventstore.Any,
		domain.MustEncode(verified, domain.Metadata{Actor: v.User.Username})); err != nil {
		ui.unavailable(w, r, v, fmt.Sprintf("recording the verification (it checked %d events, ok: %v)", report.Checked, report.OK), err)
		return
	}
	http.Redirect(w, r, "/audit#verification", http.StatusSeeOther)
}

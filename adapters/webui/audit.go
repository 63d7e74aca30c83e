package webui

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain/eventstore"
)

type auditData struct {
	Lookup      string
	LookupError string
	Report      *eventstore.VerifyReport
	Took        time.Duration
	Error       string
}

// auditPage shows the chain check's form and the request lookup; a looked
// up request id goes to its page, which lists its event chain.
func (ui *UI) auditPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	p := page{Title: "Audit", Section: "audit", Viewer: v}
	lookup := strings.TrimSpace(r.URL.Query().Get("request"))
	if lookup != "" {
		if _, err := uuid.Parse(lookup); err != nil {
			p.Data = auditData{Lookup: lookup, LookupError: "request: " + quote(lookup) + " is not a request id; request ids look like 7c9e6679-7425-40de-944b-e07fc1f90ae7"}
			ui.render(w, r, http.StatusBadRequest, "audit", p)
			return
		}
		http.Redirect(w, r, "/requests/"+lookup, http.StatusSeeOther)
		return
	}
	p.Data = auditData{}
	ui.render(w, r, http.StatusOK, "audit", p)
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}

// auditVerify walks the whole hash chain (eventstore.Verify) and shows the
// outcome: how many events were checked and the head's position and hash,
// or the first bad position and why. It reads the whole log, so it is for
// admins, and one runs at a time.
func (ui *UI) auditVerify(w http.ResponseWriter, r *http.Request, v *viewer) {
	p := page{Title: "Audit", Section: "audit", Viewer: v}
	if !v.Admin {
		ui.fail(w, r, v, http.StatusForbidden, "Verifying the chain needs the logbook:admin permission.")
		return
	}
	if !ui.verifying.TryLock() {
		w.Header().Set("Retry-After", "5")
		p.Data = auditData{Error: "A verification is already running. Try again when it has finished."}
		ui.render(w, r, http.StatusTooManyRequests, "audit", p)
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
	p.Data = auditData{Report: &report, Took: took.Round(time.Microsecond)}
	ui.render(w, r, http.StatusOK, "audit", p)
}

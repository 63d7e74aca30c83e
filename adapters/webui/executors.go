package webui

import (
	"net/http"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

type executorsData struct {
	// OnBus is false when the server runs its commands in-process.
	OnBus     bool
	Executors []httpapi.ExecutorView
}

// executorsPage lists the live executors (on a NATS bus), as GET
// /v1/executors does, for holders of logbook:manage_bundles.
func (ui *UI) executorsPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	const perm = permManageBundles
	if !v.may(perm) {
		ui.fail(w, r, v, http.StatusForbidden, "The list of executors needs the "+perm+" permission.")
		return
	}
	data := executorsData{}
	if ui.cfg.Executors != nil {
		data.OnBus, data.Executors = true, httpapi.ExecutorViews(ui.cfg.Executors.Executors())
	}
	ui.render(w, r, http.StatusOK, "executors", page{Title: "Executors", Section: "executors", Viewer: v, Data: data})
}

package httpapi

import (
	"context"
	"net/http"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/domain/access"
)

// ExportStatusReader reports the export stream's destinations.
type ExportStatusReader interface {
	ExportStatus(ctx context.Context) ([]export.Status, error)
}

// ExportStatusAnswer answers GET /v1/export/status.
type ExportStatusAnswer struct {
	Destinations []export.Status `json:"destinations"`
}

func (a *API) exportStatus(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permAdmin) {
		return
	}
	if err := onlyParams(r.URL.Query(), nil); err != nil {
		writeParamError(w, err)
		return
	}
	if a.Exports == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server reports no export stream"})
		return
	}
	statuses, err := a.Exports.ExportStatus(r.Context())
	if err != nil {
		unavailable(w, "reading the export cursors", err)
		return
	}
	if statuses == nil {
		statuses = []export.Status{}
	}
	writeJSON(w, http.StatusOK, ExportStatusAnswer{Destinations: statuses})
}

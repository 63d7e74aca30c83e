package httpapi

import (
	"net/http"
	"time"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/executor"
)

// ExecutorLister lists the live executors (executor.Fleet, on a NATS bus).
type ExecutorLister interface {
	Executors() []executor.ExecutorStatus
}

// ExecutorView is one live executor.
type ExecutorView struct {
	ID             string    `json:"id"`
	Host           string    `json:"host"`
	Groups         []string  `json:"groups"`
	Version        string    `json:"version"`
	Runs           []string  `json:"runs"`
	Slots          int       `json:"slots"`
	PoolContainers int       `json:"pool_containers"`
	Since          time.Time `json:"since"`
	LastSeen       time.Time `json:"last_seen"`
}

// ExecutorsList answers GET /v1/executors.
type ExecutorsList struct {
	Executors []ExecutorView `json:"executors"`
}

// ExecutorViews turns the fleet's statuses into views, the runs never nil.
func ExecutorViews(statuses []executor.ExecutorStatus) []ExecutorView {
	out := make([]ExecutorView, 0, len(statuses))
	for _, s := range statuses {
		runs := s.Runs
		if runs == nil {
			runs = []string{}
		}
		out = append(out, ExecutorView{ID: s.ID, Host: s.Host, Groups: s.Groups, Version: s.Version, Runs: runs, Slots: s.Slots,
			PoolContainers: s.PoolContainers, Since: s.Since, LastSeen: s.LastSeen})
	}
	return out
}

func (a *API) listExecutors(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !noParams(w, r) || !a.requirePermission(w, user, permManageBundles) {
		return
	}
	if a.Executors == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server runs commands in-process: executors are listed on a NATS bus (LOGBOOK_BUS_URL)"})
		return
	}
	writeJSON(w, http.StatusOK, ExecutorsList{Executors: ExecutorViews(a.Executors.Executors())})
}

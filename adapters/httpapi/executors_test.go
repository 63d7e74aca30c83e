package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/executor"
)

type bundleManager struct{ oneUser }

func (bundleManager) PermissionsOf(string) []string { return []string{"logbook:manage_bundles"} }

type fixedFleet []executor.ExecutorStatus

func (f fixedFleet) Executors() []executor.ExecutorStatus { return f }

func getExecutors(t *testing.T, api *httpapi.API) (int, string) {
	t.Helper()
	srv := httptest.NewServer(httpapi.NewHandler(alwaysReady, func() *httpapi.API { return api }))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/executors", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestTheLiveExecutorsAreListedToBundleManagers(t *testing.T) {
	t.Parallel()
	seen := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fleet := fixedFleet{{Heartbeat: executor.Heartbeat{ID: "exec-a", Host: "h1", Groups: []string{"prod"}, Version: "v1", Runs: []string{"r1"}, Slots: 4}, LastSeen: seen}}
	status, body := getExecutors(t, &httpapi.API{Users: bundleManager{}, Executors: fleet})
	var list httpapi.ExecutorsList
	if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Executors) != 1 {
		t.Fatalf("GET /v1/executors: %d %s", status, body)
	}
	if e := list.Executors[0]; e.ID != "exec-a" || e.Host != "h1" || e.Groups[0] != "prod" || e.Runs[0] != "r1" || !e.LastSeen.Equal(seen) {
		t.Fatalf("executor %+v", e)
	}
	if status, body := getExecutors(t, &httpapi.API{Users: oneUser{}, Executors: fleet}); status != http.StatusForbidden || !strings.Contains(body, "manage_bundles") {
		t.Fatalf("without the permission: %d %s", status, body)
	}
	if status, body := getExecutors(t, &httpapi.API{Users: bundleManager{}}); status != http.StatusNotImplemented || !strings.Contains(body, "LOGBOOK_BUS_URL") {
		t.Fatalf("on the in-process bus: %d %s", status, body)
	}
}

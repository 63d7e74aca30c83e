package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbookhq/logbook/adapters/export"
	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/internal/testenv"
)

// serve runs each destination LOGBOOK_EXPORT lists as a part of its
// supervisor, which /readyz shows; the destination gets the whole log,
// and `export status` then shows it caught up.
func TestServeExportsTheLogUnderItsSupervisor(t *testing.T) {
	dataDir, exportDir := t.TempDir(), t.TempDir()
	t.Setenv("LOGBOOK_DATA_DIR", dataDir)
	t.Setenv("LOGBOOK_DATABASE_URL", "")
	t.Setenv("LOGBOOK_EXPORT", "archive")
	t.Setenv("LOGBOOK_EXPORT_ARCHIVE_TYPE", "file")
	t.Setenv("LOGBOOK_EXPORT_ARCHIVE_DIR", exportDir)
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPAddr, cfg.LogLevel, cfg.LogFormat, cfg.Runtime = freeAddr(t), "warn", "json", "process"
	stop := startServe(t, cfg)
	body := waitForStatus(t, "http://"+cfg.HTTPAddr+"/readyz", http.StatusOK)
	var report httpapi.ReadinessReport
	if err := json.Unmarshal([]byte(body), &report); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range report.Parts {
		if p.Name == "export:archive" {
			found = true
			if p.Essential {
				t.Errorf("the export part is essential: a destination that is down would make the server unready")
			}
		}
	}
	if !found {
		t.Fatalf("/readyz lists no part export:archive: %s", body)
	}
	testenv.Eventually(t, "export:archive running", func() bool {
		_, body := getStatus("http://" + cfg.HTTPAddr + "/readyz")
		return strings.Contains(body, `"name":"export:archive","state":"`+string(supervisor.Running)+`"`)
	})
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after a clean stop", err)
	}

	s, err := sqlite.OpenWith(context.Background(), filepath.Join(dataDir, "logbook.db"), sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	head, _, err := s.Head(context.Background())
	s.Close()
	if err != nil || head < 5 {
		t.Fatalf("head %d, %v", head, err)
	}
	out, _, err := runCLIOutput(t, "export", "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var statuses []export.Status
	if err := json.Unmarshal([]byte(out), &statuses); err != nil || len(statuses) != 1 {
		t.Fatalf("export status --json = %s (%v)", out, err)
	}
	st := statuses[0]
	if st.Destination != "archive" || st.Type != "file" || st.Target != exportDir || st.Head != head || st.Position < 1 {
		t.Fatalf("status %+v (head %d)", st, head)
	}
	var records []export.Record
	paths, _ := filepath.Glob(filepath.Join(exportDir, "*.jsonl"))
	for _, p := range paths {
		records = append(records, readJSONL(t, p)...)
	}
	got, err := export.CheckContinuous(records, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A stop between a batch's fsync and its cursor leaves the files ahead
	// of the cursor (the next start takes them as held), never behind.
	if n := int64(len(got)); n < st.Position || n > head {
		t.Fatalf("the files hold 1 to %d, the cursor says %d, the head is %d", n, st.Position, head)
	}

	out, _, err = runCLIOutput(t, "export", "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DESTINATION", "archive", "file", exportDir} {
		if !strings.Contains(out, want) {
			t.Errorf("export status = %q, missing %q", out, want)
		}
	}
}

// A bad LOGBOOK_EXPORT_* setting stops serve and every command before it
// starts, naming the variable.
func TestABadExportSettingIsAConfigurationErrorNamingIt(t *testing.T) {
	seedSQLite(t, 3)
	t.Setenv("LOGBOOK_EXPORT", "siem")
	t.Setenv("LOGBOOK_EXPORT_SIEM_TYPE", "syslog")
	t.Setenv("LOGBOOK_EXPORT_SIEM_ADDR", "nowhere")
	_, _, err := runCLIOutput(t, "export", "status")
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, `LOGBOOK_EXPORT_SIEM_ADDR "nowhere" is not host:port`) {
		t.Fatalf("export status with a bad address returned %v, want exit 2 naming the variable", err)
	}
}

// Without destinations, export status says how to configure one.
func TestExportStatusWithoutDestinations(t *testing.T) {
	seedSQLite(t, 3)
	out, _, err := runCLIOutput(t, "export", "status")
	if err != nil || !strings.Contains(out, "no export destinations: set LOGBOOK_EXPORT") {
		t.Fatalf("export status = %q, %v", out, err)
	}
}

func readJSONL(t *testing.T, path string) []export.Record {
	t.Helper()
	var out []export.Record
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var r export.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

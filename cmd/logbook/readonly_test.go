package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `projections status` with no LOGBOOK_DATA_DIR used to create
// ./data/logbook.db and report zeros. Commands that read a store refuse
// when there is none, say where they looked, and create nothing.
func TestReadOnlyCommandsNeverCreateAStore(t *testing.T) {
	for _, args := range [][]string{{"audit", "verify"}, {"events", "tail"}, {"projections", "status"}, {"projections", "rebuild"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			t.Setenv("LOGBOOK_DATA_DIR", dataDir)
			t.Setenv("LOGBOOK_DATABASE_URL", "")
			err := runCLI(t, args...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "no Logbook event store at "+filepath.Join(dataDir, "logbook.db")) {
				t.Fatalf("%v: %v, want exit 2 saying there is no store at %s", args, err, dataDir)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%v created %s (%v)", args, dataDir, err)
			}
		})
	}
}

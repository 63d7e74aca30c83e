package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/logbookhq/logbook/adapters/sqlite"
	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/eventstore/storetest"
)

func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logbook.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Dialect: "sqlite",
		New:     func(t *testing.T) eventstore.Store { return openTemp(t) },
		Exec: func(s eventstore.Store, query string) error {
			_, err := s.(*sqlite.Store).DB().Exec(query)
			return err
		},
		Another: func(t *testing.T, s eventstore.Store) eventstore.Store {
			other, err := sqlite.Open(context.Background(), s.(*sqlite.Store).Path(), sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Close() })
			return other
		},
	})
}

// Processes that open one new database at once (a server starting while
// `audit verify` polls it) migrate it one after another; none fails.
func TestOpeningANewDatabaseFromManyPlacesAtOnceMigratesItOnce(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "logbook.db")
		const openers = 8
		errs := make(chan error, openers)
		for range openers {
			go func() {
				s, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range openers {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

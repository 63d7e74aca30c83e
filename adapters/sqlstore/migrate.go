package sqlstore

import (
	"context"
	"fmt"

	"github.com/pressly/goose/v3"
)

// Migrate applies the build's migrations, then refuses a database whose
// schema is newer than any this build knows (migrated by a newer Logbook):
// goose skips versions it has no file for, and an older build writing to
// a newer schema could corrupt it. Both failures wrap ErrMigration.
func Migrate(ctx context.Context, provider *goose.Provider) error {
	if _, err := provider.Up(ctx); err != nil {
		return err
	}
	current, target, err := provider.GetVersions(ctx)
	if err != nil {
		return err
	}
	if current > target {
		return fmt.Errorf("%w: the database's schema is version %d, and this build of Logbook knows versions up to %d; run the newer build, or restore a backup made for this one", ErrMigration, current, target)
	}
	return nil
}

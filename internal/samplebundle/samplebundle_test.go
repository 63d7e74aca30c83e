package samplebundle_test

import (
	"slices"
	"testing"

	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/internal/samplebundle"
)

func TestTheSampleBundleValidatesAndNamesEveryToolboxCommand(t *testing.T) {
	// As `bundle validate` and installing check it, on a site with the
	// default pids maximum.
	b, err := bundle.LoadForSite(samplebundle.Config, bundle.Site{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Warnings()) != 0 {
		t.Fatalf("warnings: %v", b.Warnings())
	}
	var names []string
	for _, c := range b.Commands() {
		names = append(names, c.Name)
		if c.Name == "shout" {
			continue // echo, behind a permission
		}
		if len(c.Executable) != 1 || c.Executable[0] != "/bin/"+c.Name {
			t.Errorf("%s runs %v, want /bin/%s", c.Name, c.Executable, c.Name)
		}
	}
	slices.Sort(names)
	want := append(slices.Clone(samplebundle.Commands), "shout")
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("commands %v, want %v", names, want)
	}
	if b.Image() != "logbook/toolbox:0.1.0" {
		t.Fatalf("image %s", b.Image())
	}
}

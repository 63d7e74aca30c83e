package dispatch

import (
	"reflect"
	"testing"

	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/run"
)

// Given the bundle's configuration, when a request starts a stage, then
// its run gets the values resolved for the sender's room, groups and user,
// each with its layer; secrets only by name, layer and version.
func TestARunGetsItsConfigurationResolvedForItsScope(t *testing.T) {
	t.Parallel()
	d := given(t).withFacts(func(f *StaticFacts) {
		f.Values = configValues(
			bundleconfig.SecretSet{Bundle: "ops", Layer: "base", Key: "OPS_TOKEN", Version: 1},
			bundleconfig.SecretSet{Bundle: "ops", Layer: "user/alice", Key: "OPS_TOKEN", Version: 4},
			bundleconfig.ConfigSet{Bundle: "ops", Layer: "base", Key: "REGION", Value: "eu"},
			bundleconfig.ConfigSet{Bundle: "ops", Layer: "room/general", Key: "REGION", Value: "us"},
			bundleconfig.ConfigSet{Bundle: "ops", Layer: "group/ops", Key: "ZONE", Value: "b"},
			bundleconfig.ConfigSet{Bundle: "ops", Layer: "user/bob", Key: "ZONE", Value: "bob's"},
			bundleconfig.ConfigSet{Bundle: "web", Layer: "base", Key: "OTHER", Value: "x"},
		)
	}).then(received("U1", "ops:deploy staging"))
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked StageStarted")
	req := d.Runs[0].Request
	wantConfig := []run.ConfigValue{{Name: "REGION", Value: "us", Layer: "room/general"}, {Name: "ZONE", Value: "b", Layer: "group/ops"}}
	if !reflect.DeepEqual(req.Config, wantConfig) {
		t.Fatalf("config %+v\nwant %+v", req.Config, wantConfig)
	}
	if want := []run.SecretRef{{Name: "OPS_TOKEN", Layer: "user/alice", Version: 4}}; !reflect.DeepEqual(req.Secrets, want) {
		t.Fatalf("secrets %+v, want %+v", req.Secrets, want)
	}
	if want := []string{"OPS_TOKEN", "REGION", "ZONE"}; !reflect.DeepEqual(req.EnvNames, want) {
		t.Fatalf("env names %v, want %v", req.EnvNames, want)
	}
}

// Given a bundle that declares a variable no layer sets for the sender,
// when the request would start it, then the request fails before any run,
// and the reply names the variable and the command that sets it.
func TestARunMissingADeclaredVariableFailsBeforeAnythingRuns(t *testing.T) {
	t.Parallel()
	d := given(t).withFacts(func(f *StaticFacts) {
		// Set for another user and another room only.
		f.Values = configValues(
			bundleconfig.SecretSet{Bundle: "ops", Layer: "user/bob", Key: "OPS_TOKEN", Version: 1},
			bundleconfig.ConfigSet{Bundle: "ops", Layer: "room/dev", Key: "OPS_TOKEN", Value: "x"},
		)
	}).then(received("U1", "ops:deploy staging"))
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked RequestFailed")
	if len(d.Runs) != 0 {
		t.Fatalf("runs started: %+v", d.Runs)
	}
	wantReply(t, d, "OPS_TOKEN", "logbook config set ops OPS_TOKEN=VALUE", "logbook secret set ops OPS_TOKEN")
}

// A run goes to its bundle's relay group.
func TestARunGoesToItsBundlesRelayGroup(t *testing.T) {
	t.Parallel()
	d := given(t).withFacts(func(f *StaticFacts) { f.Installed[0].Group = "prod" }).then(received("U1", "ops:deploy staging"))
	if got := d.Runs[0].Request.Group; got != "prod" {
		t.Fatalf("relay group %q, want prod", got)
	}
	d = given(t).then(received("U1", "ops:deploy staging"))
	if got := d.Runs[0].Request.Group; got != "" {
		t.Fatalf("relay group %q of an unassigned bundle, want none (the default)", got)
	}
}

// A bundle installed from a registry runs the image it pinned, not its
// tag.
func TestARunUsesThePinnedImage(t *testing.T) {
	t.Parallel()
	pinned := "registry.example:5000/acme/ops@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	d := given(t).withFacts(func(f *StaticFacts) { f.Installed[0].Image = pinned }).then(received("U1", "ops:deploy staging"))
	if got := d.Runs[0].Request.Image; got != pinned {
		t.Fatalf("image %s, want %s", got, pinned)
	}
}

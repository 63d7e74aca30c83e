package bundle

import (
	"fmt"
	"regexp"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
)

// StreamPrefix is the category of bundle streams: `bundle-<name>`.
const StreamPrefix = "bundle-"

// Stream names the stream of the bundle called name.
func Stream(name string) string { return StreamPrefix + name }

// BundleInstalled records a bundle version's config exactly as it was
// installed. Config is the source text (YAML or JSON); Load turns it back
// into the model, so views rebuild from the text, never from a Go struct
// that a later build may have changed.
type BundleInstalled struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Config      string   `json:"config"`
	Permissions []string `json:"permissions"` // as declared, ns:perm
	// Image pins the version to the image's content: repository@sha256:...
	// as pulled when it was installed. Its runs use it, so a tag pushed
	// again changes nothing until someone upgrades, and the log says
	// which bytes ran. Empty for a config installed without a pull.
	Image string `json:"image,omitempty"`
}

// BundleEnabled makes one installed version the one that runs. A bundle
// runs nothing until a version is enabled.
type BundleEnabled struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// BundleDisabled stops a bundle's commands from running; its rules and
// permissions stay as they are.
type BundleDisabled struct {
	Name string `json:"name"`
}

// BundleUninstalled removes a bundle and all its versions: its commands
// no longer run, and its images may go. Installing it again starts anew.
type BundleUninstalled struct {
	Name string `json:"name"`
}

// BundleAssigned sends a bundle's runs to the executors of a relay group
// (on a NATS bus). A bundle assigned to none runs in DefaultRelayGroup.
type BundleAssigned struct {
	Name  string `json:"name"`
	Group string `json:"group"`
}

// BundleUnassigned sends a bundle's runs to DefaultRelayGroup again.
type BundleUnassigned struct {
	Name  string `json:"name"`
	Group string `json:"group"` // the group it leaves
}

// DefaultRelayGroup runs the commands of bundles assigned to no group.
const DefaultRelayGroup = "default"

var relayNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateRelayName checks the name of a relay group or an executor (what
// it is, kind, starts the error): it becomes a NATS subject token and a
// consumer name.
func ValidateRelayName(kind, name string) error {
	if !relayNamePattern.MatchString(name) {
		return fmt.Errorf("%s %q: use lowercase letters, digits, '-' and '_' (1 to 63, starting with a letter or digit)", kind, name)
	}
	return nil
}

// ValidateRelayGroup checks a relay group's name.
func ValidateRelayGroup(name string) error { return ValidateRelayName("relay group", name) }

// RuleAdded adds an operator's rule to a bundle's commands, beside the
// rules its config declares. ID names it for removal.
type RuleAdded struct {
	Name string `json:"name"` // the bundle
	ID   string `json:"id"`
	Rule string `json:"rule"` // full form
}

// RuleRemoved removes an operator's rule.
type RuleRemoved struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

func (BundleInstalled) EventType() string   { return "BundleInstalled" }
func (BundleEnabled) EventType() string     { return "BundleEnabled" }
func (BundleDisabled) EventType() string    { return "BundleDisabled" }
func (RuleAdded) EventType() string         { return "RuleAdded" }
func (BundleUninstalled) EventType() string { return "BundleUninstalled" }
func (RuleRemoved) EventType() string       { return "RuleRemoved" }
func (BundleAssigned) EventType() string    { return "BundleAssigned" }
func (BundleUnassigned) EventType() string  { return "BundleUnassigned" }

func init() {
	domain.Register[BundleInstalled]()
	domain.Register[BundleEnabled]()
	domain.Register[BundleDisabled]()
	domain.Register[RuleAdded]()
	domain.Register[BundleUninstalled]()
	domain.Register[RuleRemoved]()
	domain.Register[BundleAssigned]()
	domain.Register[BundleUnassigned]()
}

// InstallEvents are the events that install and enable a bundle version,
// with stable ids: installing the same version twice is a no-op.
func InstallEvents(b *Bundle, config []byte) (string, []domain.Payload, []uuid.UUID) {
	return Stream(b.Name),
		[]domain.Payload{
			BundleInstalled{Name: b.Name, Version: b.Version, Config: string(config), Permissions: b.Permissions},
			BundleEnabled{Name: b.Name, Version: b.Version},
		},
		[]uuid.UUID{
			uuid.NewSHA1(uuid.NameSpaceURL, []byte("bundle/"+b.Name+"/"+b.Version+"/installed")),
			uuid.NewSHA1(uuid.NameSpaceURL, []byte("bundle/"+b.Name+"/"+b.Version+"/enabled")),
		}
}

// Package samplebundle is the bundle `make run` installs so that a fresh
// Logbook has commands to try: the logbook-toolbox commands.
package samplebundle

import _ "embed"

// Config is the sample bundle's config (Cog bundle version 4).
//
//go:embed config.yaml
var Config []byte

// Commands are the toolbox commands the image links to the binary.
var Commands = []string{"echo", "date", "wc", "sort", "seq", "sleep"}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestServeRejectsBadIRCSettingsBeforeOpeningTheStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LOGBOOK_DATA_DIR", dir)
	t.Setenv("LOGBOOK_IRC_SERVER", "irc.example.org")
	t.Setenv("LOGBOOK_IRC_CHANNELS", "ops")
	err := runCLI(t, "serve")
	ee, ok := err.(*exitError)
	if !ok || ee.code != 2 || !strings.Contains(ee.msg, "LOGBOOK_IRC_SERVER") || !strings.Contains(ee.msg, `"ops" is not a channel`) {
		t.Fatalf("serve with bad IRC settings: %v; want exit 2 naming LOGBOOK_IRC_SERVER and the channel", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "logbook.db")); !os.IsNotExist(err) {
		t.Fatalf("serve created the store before rejecting its settings (stat: %v)", err)
	}
}

func TestChatProvidersBuildIRCFromTheEnvironment(t *testing.T) {
	t.Setenv("LOGBOOK_IRC_SERVER", "127.0.0.1:6667")
	t.Setenv("LOGBOOK_IRC_CHANNELS", "#ops")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	providers, _, err := chatProviders(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range providers {
		names = append(names, p.Name())
	}
	if strings.Join(names, ",") != "irc" {
		t.Fatalf("providers %v; want irc alone", names)
	}

	t.Setenv("LOGBOOK_IRC_SERVER", "")
	cfg, _ = loadConfig()
	if providers, _, _ := chatProviders(cfg, zerolog.Nop()); len(providers) != 0 {
		t.Fatalf("without LOGBOOK_IRC_SERVER: %d providers; want none", len(providers))
	}
}

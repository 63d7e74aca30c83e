package main

import (
	"strings"
	"testing"
	"time"
)

func TestTransparencySettingsNameTheBadVariable(t *testing.T) {
	t.Setenv("LOGBOOK_CHECKPOINT_EVERY", "0")
	t.Setenv("LOGBOOK_CHECKPOINT_INTERVAL", "5ms")
	t.Setenv("LOGBOOK_CHECKPOINT_URL", "ftp://x")
	t.Setenv("LOGBOOK_CHECKPOINT_ORIGIN", "a b")
	t.Setenv("LOGBOOK_WITNESSES", "http://127.0.0.1:1/ w+1+AA, nourl")
	_, err := loadTransparencySettings()
	for _, want := range []string{"LOGBOOK_CHECKPOINT_EVERY \"0\"", "LOGBOOK_CHECKPOINT_INTERVAL \"5ms\"", "LOGBOOK_CHECKPOINT_URL", "LOGBOOK_CHECKPOINT_ORIGIN", "LOGBOOK_WITNESSES entry 2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	t.Setenv("LOGBOOK_CHECKPOINT_EVERY", "50")
	t.Setenv("LOGBOOK_CHECKPOINT_INTERVAL", "30s")
	t.Setenv("LOGBOOK_CHECKPOINT_URL", "https://audit.example/checkpoints")
	t.Setenv("LOGBOOK_CHECKPOINT_ORIGIN", "logbook.example/prod")
	t.Setenv("LOGBOOK_WITNESSES", "http://127.0.0.1:1/ w1+01020304+AQ==, https://w2.example/ w2+05060708+AQ==")
	s, err := loadTransparencySettings()
	if err != nil {
		t.Fatal(err)
	}
	if s.Every != 50 || s.Interval != 30*time.Second || len(s.Witnesses) != 2 || s.Witnesses[1].URL != "https://w2.example/" || s.Witnesses[1].Key != "w2+05060708+AQ==" {
		t.Fatalf("settings %+v", s)
	}
}

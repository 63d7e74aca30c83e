package export_test

import (
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/export"
)

func TestParseConfigReadsEveryKindOfDestination(t *testing.T) {
	t.Parallel()
	got, err := export.ParseConfig([]string{
		"PATH=/usr/bin",
		"LOGBOOK_EXPORT=archive, siem ,hook",
		"LOGBOOK_EXPORT_ARCHIVE_TYPE=file",
		"LOGBOOK_EXPORT_ARCHIVE_DIR=/var/lib/logbook/export",
		"LOGBOOK_EXPORT_ARCHIVE_ROTATE_SIZE=16MiB",
		"LOGBOOK_EXPORT_ARCHIVE_ROTATE_INTERVAL=1h",
		"LOGBOOK_EXPORT_SIEM_TYPE=syslog",
		"LOGBOOK_EXPORT_SIEM_ADDR=127.0.0.1:6514",
		"LOGBOOK_EXPORT_SIEM_TLS=1",
		"LOGBOOK_EXPORT_SIEM_TLS_CA_FILE=/etc/ca.pem",
		"LOGBOOK_EXPORT_SIEM_FACILITY=audit",
		"LOGBOOK_EXPORT_SIEM_FROM=head",
		"LOGBOOK_EXPORT_HOOK_TYPE=webhook",
		"LOGBOOK_EXPORT_HOOK_URL=https://siem.example/ingest?token=abc",
		"LOGBOOK_EXPORT_HOOK_SECRET=export/HOOK_KEY",
		"LOGBOOK_EXPORT_HOOK_BATCH=50",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d destinations, want 3", len(got))
	}
	archive, siem, hook := got[0], got[1], got[2]
	if archive.Name != "archive" || archive.Kind != export.KindFile || archive.RotateBytes != 16<<20 || archive.RotateEvery != time.Hour || archive.From != export.FromStart {
		t.Errorf("archive = %+v", archive)
	}
	if siem.Kind != export.KindSyslog || !siem.TLS || siem.Facility != 13 || siem.From != export.FromHead || siem.MaxMessage != 64<<10 || siem.ResendWindow != 10*time.Second {
		t.Errorf("siem = %+v", siem)
	}
	if hook.Kind != export.KindWebhook || hook.SecretBundle != "export" || hook.SecretKey != "HOOK_KEY" || hook.Batch != 50 {
		t.Errorf("hook = %+v", hook)
	}
	if target := hook.Target(); strings.Contains(target, "token") {
		t.Errorf("the webhook's target %q shows its query", target)
	}
}

func TestParseConfigWithoutDestinationsIsEmpty(t *testing.T) {
	t.Parallel()
	got, err := export.ParseConfig([]string{"HOME=/root"})
	if err != nil || len(got) != 0 {
		t.Fatalf("ParseConfig() = %v, %v; want nothing", got, err)
	}
}

func TestParseConfigNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"a name that is not lower case", []string{"LOGBOOK_EXPORT=Siem"}, `LOGBOOK_EXPORT: destination name "Siem"`},
		{"a name listed twice", []string{"LOGBOOK_EXPORT=a,a", "LOGBOOK_EXPORT_A_TYPE=file", "LOGBOOK_EXPORT_A_DIR=/x"}, `destination "a" is listed twice`},
		{"no type", []string{"LOGBOOK_EXPORT=a"}, "LOGBOOK_EXPORT_A_TYPE is not set"},
		{"an unknown type", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=kafka"}, `LOGBOOK_EXPORT_A_TYPE "kafka" is not file, syslog or webhook`},
		{"a file without its directory", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=file"}, "LOGBOOK_EXPORT_A_DIR is not set"},
		{"a size that is not one", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=file", "LOGBOOK_EXPORT_A_DIR=/x", "LOGBOOK_EXPORT_A_ROTATE_SIZE=big"}, `LOGBOOK_EXPORT_A_ROTATE_SIZE "big"`},
		{"an interval under a second", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=file", "LOGBOOK_EXPORT_A_DIR=/x", "LOGBOOK_EXPORT_A_ROTATE_INTERVAL=5ms"}, `LOGBOOK_EXPORT_A_ROTATE_INTERVAL "5ms"`},
		{"a syslog address without a port", []string{"LOGBOOK_EXPORT=s", "LOGBOOK_EXPORT_S_TYPE=syslog", "LOGBOOK_EXPORT_S_ADDR=localhost"}, `LOGBOOK_EXPORT_S_ADDR "localhost" is not host:port`},
		{"a TLS setting without TLS", []string{"LOGBOOK_EXPORT=s", "LOGBOOK_EXPORT_S_TYPE=syslog", "LOGBOOK_EXPORT_S_ADDR=h:1", "LOGBOOK_EXPORT_S_TLS_CA_FILE=/ca"}, "LOGBOOK_EXPORT_S_TLS_CA_FILE is set but LOGBOOK_EXPORT_S_TLS is not 1"},
		{"a certificate without its key", []string{"LOGBOOK_EXPORT=s", "LOGBOOK_EXPORT_S_TYPE=syslog", "LOGBOOK_EXPORT_S_ADDR=h:1", "LOGBOOK_EXPORT_S_TLS=1", "LOGBOOK_EXPORT_S_TLS_CERT_FILE=/c"}, "LOGBOOK_EXPORT_S_TLS_CERT_FILE and LOGBOOK_EXPORT_S_TLS_KEY_FILE go together"},
		{"an unknown facility", []string{"LOGBOOK_EXPORT=s", "LOGBOOK_EXPORT_S_TYPE=syslog", "LOGBOOK_EXPORT_S_ADDR=h:1", "LOGBOOK_EXPORT_S_FACILITY=local9"}, `LOGBOOK_EXPORT_S_FACILITY "local9"`},
		{"a webhook without its key", []string{"LOGBOOK_EXPORT=w", "LOGBOOK_EXPORT_W_TYPE=webhook", "LOGBOOK_EXPORT_W_URL=http://h/"}, "LOGBOOK_EXPORT_W_SECRET_FILE or LOGBOOK_EXPORT_W_SECRET must name"},
		{"a webhook with two keys", []string{"LOGBOOK_EXPORT=w", "LOGBOOK_EXPORT_W_TYPE=webhook", "LOGBOOK_EXPORT_W_URL=http://h/", "LOGBOOK_EXPORT_W_SECRET_FILE=/k", "LOGBOOK_EXPORT_W_SECRET=b/K"}, "both name the HMAC key"},
		{"a secret that is not BUNDLE/KEY", []string{"LOGBOOK_EXPORT=w", "LOGBOOK_EXPORT_W_TYPE=webhook", "LOGBOOK_EXPORT_W_URL=http://h/", "LOGBOOK_EXPORT_W_SECRET=KEY"}, `LOGBOOK_EXPORT_W_SECRET "KEY" is not BUNDLE/KEY`},
		{"a URL that is not http", []string{"LOGBOOK_EXPORT=w", "LOGBOOK_EXPORT_W_TYPE=webhook", "LOGBOOK_EXPORT_W_URL=ftp://user:pw@h/", "LOGBOOK_EXPORT_W_SECRET_FILE=/k"}, "LOGBOOK_EXPORT_W_URL is not an http:// or https:// URL"},
		{"a misspelt setting", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=file", "LOGBOOK_EXPORT_A_DIR=/x", "LOGBOOK_EXPORT_A_ROTATE_SIZ=1MiB"}, "LOGBOOK_EXPORT_A_ROTATE_SIZ configures nothing"},
		{"another type's setting", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=file", "LOGBOOK_EXPORT_A_DIR=/x", "LOGBOOK_EXPORT_A_ADDR=h:1"}, "LOGBOOK_EXPORT_A_ADDR configures nothing"},
		{"a setting with no destination listed", []string{"LOGBOOK_EXPORT_A_TYPE=file"}, "LOGBOOK_EXPORT_A_TYPE is set but LOGBOOK_EXPORT lists no destination"},
		{"a batch out of range", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=file", "LOGBOOK_EXPORT_A_DIR=/x", "LOGBOOK_EXPORT_A_BATCH=0"}, `LOGBOOK_EXPORT_A_BATCH "0"`},
		{"a start that is neither", []string{"LOGBOOK_EXPORT=a", "LOGBOOK_EXPORT_A_TYPE=file", "LOGBOOK_EXPORT_A_DIR=/x", "LOGBOOK_EXPORT_A_FROM=tail"}, `LOGBOOK_EXPORT_A_FROM "tail"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := export.ParseConfig(tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseConfig(%q) = %v; want an error containing %q", tc.env, err, tc.want)
			}
		})
	}
}

// A webhook's address may carry a token: an error about it never shows it.
func TestParseConfigNeverQuotesAWebhookAddress(t *testing.T) {
	t.Parallel()
	_, err := export.ParseConfig([]string{"LOGBOOK_EXPORT=w", "LOGBOOK_EXPORT_W_TYPE=webhook", "LOGBOOK_EXPORT_W_URL=gopher://u:hunter2@h/?token=t0ps3cret", "LOGBOOK_EXPORT_W_SECRET_FILE=/k"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "t0ps3cret") {
		t.Fatalf("error = %v; want one that does not quote the address", err)
	}
}

// FuzzParseConfig feeds environments, one variable a line: parsing never
// panics, every error names a LOGBOOK_EXPORT variable, and what parses is
// usable (a kind, a name, a batch, and the kind's required setting).
func FuzzParseConfig(f *testing.F) {
	f.Add("LOGBOOK_EXPORT=a\nLOGBOOK_EXPORT_A_TYPE=file\nLOGBOOK_EXPORT_A_DIR=/x")
	f.Add("LOGBOOK_EXPORT=s,w\nLOGBOOK_EXPORT_S_TYPE=syslog\nLOGBOOK_EXPORT_S_ADDR=[::1]:514\nLOGBOOK_EXPORT_S_TLS=1\nLOGBOOK_EXPORT_W_TYPE=webhook\nLOGBOOK_EXPORT_W_URL=https://h/p\nLOGBOOK_EXPORT_W_SECRET=b/K")
	f.Add("LOGBOOK_EXPORT=a\nLOGBOOK_EXPORT_A_TYPE=file\nLOGBOOK_EXPORT_A_DIR=/x\nLOGBOOK_EXPORT_A_ROTATE_SIZE=1.5GiB\nLOGBOOK_EXPORT_A_ROTATE_INTERVAL=0")
	f.Add("LOGBOOK_EXPORT=,,a,\nLOGBOOK_EXPORT_A_TYPE=syslog\nLOGBOOK_EXPORT_A_ADDR=:\nLOGBOOK_EXPORT_A_MAX_MESSAGE=-1")
	f.Add("LOGBOOK_EXPORT_X=1\nLOGBOOK_EXPORT=\xff")
	f.Fuzz(func(t *testing.T, text string) {
		configs, err := export.ParseConfig(strings.Split(text, "\n"))
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(line, "LOGBOOK_EXPORT") {
					t.Fatalf("error line %q names no variable", line)
				}
			}
			return
		}
		for _, c := range configs {
			if c.Name == "" || c.Batch < 1 || c.Target() == "" && c.Kind != export.KindFile {
				t.Fatalf("parsed an unusable destination: %+v", c)
			}
			switch c.Kind {
			case export.KindFile:
				if c.Dir == "" || c.RotateBytes < 4096 {
					t.Fatalf("file destination %+v", c)
				}
			case export.KindSyslog:
				if c.Addr == "" || c.MaxMessage < 2048 {
					t.Fatalf("syslog destination %+v", c)
				}
			case export.KindWebhook:
				if c.URL == "" || (c.SecretFile == "") == (c.SecretKey == "") {
					t.Fatalf("webhook destination %+v", c)
				}
			default:
				t.Fatalf("kind %q", c.Kind)
			}
		}
	})
}
